-- luacheck configuration for the whole repository (`make lint` runs `luacheck .`).
std = "max"
max_line_length = 120
exclude_files = { "build/", ".git/", "lua_modules/", ".luarocks/" }

-- The emulator runs inside nginx (ngx_lua on LuaJIT).
files["emulator/"] = { std = "ngx_lua" }
files["lua/avalara/openresty.lua"] = { std = "max+ngx_lua" }
files["lua/avalara/openresty/"] = { std = "max+ngx_lua" }
files["lua/avalara/transport/cosocket.lua"] = { std = "max+ngx_lua" }
files["lua/avalara/transport/nginx.lua"] = { std = "max+ngx_lua" }
files["lua/avalara/transport/subrequest.lua"] = { std = "max+ngx_lua" }
files["lua/avalara/store/shared_dict.lua"] = { std = "max+ngx_lua" }
files["lua/avalara/clock.lua"] = { std = "max+ngx_lua" }
files["examples/openresty/"] = { std = "max+ngx_lua" }
-- The fleet modules run in plain Lua and inside nginx (cosockets, worker pids).
files["lua/avalara/redis/"] = { std = "max+ngx_lua" }
files["lua/avalara/resp/"] = { std = "max+ngx_lua" }
files["lua/avalara/store/redis.lua"] = { std = "max+ngx_lua" }
files["lua/avalara/fleet/init.lua"] = { std = "max+ngx_lua" }
files["lua/avalara/fleet/"] = { std = "max+ngx_lua" }

-- busted specs.
files["spec/"] = { std = "+busted", max_line_length = 140 }
