-- bench/wrk.lua: the request wrk sends in scenario 5 (the fake API's own capacity), from the
-- environment: WRK_METHOD (default GET), WRK_TOKEN (bearer token), WRK_BODY_FILE (a JSON body,
-- optional). wrk runs it under LuaJIT.
-- luacheck: globals wrk
wrk.method = os.getenv("WRK_METHOD") or "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("WRK_TOKEN")
local body_file = os.getenv("WRK_BODY_FILE")
if body_file then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end
