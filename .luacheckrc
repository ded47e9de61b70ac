-- luacheck configuration (Debian's lua-check): `luacheck lua spec scripts`
std = "lua54"
max_line_length = 120
files["spec"] = { std = "+busted", globals = { "cloudflare" } }
files["scripts"] = { read_globals = { "cloudflare" } }
files["bench"] = { read_globals = { "cloudflare" } }
