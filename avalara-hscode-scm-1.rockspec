rockspec_format = "3.0"
package = "avalara-hscode"
version = "scm-1"
source = {
   url = "git+https://example.invalid/avalara-hscode.git",
}
description = {
   summary = "Avalara HS code classification and authorization client for Lua and OpenResty",
   detailed = [[
A C core on libcurl (Identity client_credentials, authorization_code, refresh_token;
the 2012 OAuth access_token, generate_token and revoke; HS code classification
calls) with token objects that keep secrets in C memory, and a pure-Lua layer.]],
   license = "MIT",
   labels = { "avalara", "hscode", "oauth2", "openresty" },
}
dependencies = {
   "lua >= 5.1",
   "lua-cjson",
   "luasql-sqlite3",   -- avalara.store.file (hscode's token and connection stores), avalara.batch's journal
   "luasocket",        -- hscode connect (the loopback redirect), sub-second clocks
   "luv",              -- hscode batch: signals and file checks
   "argparse",         -- hscode's arguments
}
-- The Makefile finds libcurl and the Lua headers with pkg-config (Debian keeps
-- curl.h in a multiarch folder that LuaRocks' builtin type does not search).
build = {
   type = "make",
   build_variables = {
      LUA = "lua$(LUA_VERSION)",
   },
   install_variables = {
      LUA = "lua$(LUA_VERSION)",
      INSTALL_CMOD = "$(LIBDIR)",
      INSTALL_LMOD = "$(LUADIR)",
      INSTALL_BIN = "$(BINDIR)",
   },
}
