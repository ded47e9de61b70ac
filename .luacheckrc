-- luacheck configuration (Debian's lua-check): `luacheck lua spec scripts`
std = "lua54"
max_line_length = 120
-- what bench/run builds and installs there is not the project's source
exclude_files = { "bench/.build/**", "bench/node_modules/**", "bench/out/**" }
files["spec"] = { std = "+busted", globals = { "cloudflare" } }
files["scripts"] = { read_globals = { "cloudflare" } }
files["bench"] = { read_globals = { "cloudflare" } }
