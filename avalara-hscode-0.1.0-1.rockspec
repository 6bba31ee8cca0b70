-- The library: avalara.core (C, on libcurl) and the avalara.* Lua modules.
-- It needs only lua-cjson; SQLite (lua-sql-sqlite3) is loaded when a file
-- store or a batch journal is first used, with an error naming the package
-- when it is absent. The hscode command is the avalara-hscode-cli rock.
-- One version: src/version.h, CHANGELOG.md, both rockspecs
-- (spec/unit/packaging_spec.lua). `make dist` builds the source rock.
rockspec_format = "3.0"
package = "avalara-hscode"
version = "0.1.0-1"
source = {
   url = "https://example.invalid/avalara-hscode/avalara-hscode-0.1.0.tar.gz",
   dir = "avalara-hscode-0.1.0",
}
description = {
   summary = "Avalara HS code classification and authorization client for Lua and OpenResty",
   detailed = [[
A C core on libcurl (Identity client_credentials, authorization_code, refresh_token;
the 2012 OAuth access_token, generate_token and revoke; HS code classification
calls) with token objects that keep secrets in C memory, and a pure-Lua layer:
a token cache, retries, polling, batches, the AvaTax Items API, partner
connections, fleets on Redis, OpenResty cosockets.]],
   license = "MIT",
   labels = { "avalara", "hscode", "oauth2", "openresty" },
}
dependencies = {
   "lua >= 5.1",
   "lua-cjson",
}
-- The Makefile finds libcurl and the Lua headers with pkg-config (Debian keeps
-- curl.h in a multiarch folder that LuaRocks' builtin type does not search).
build = {
   type = "make",
   build_variables = {
      LUA = "$(LUA)",
   },
   install_target = "install-lib",
   install_variables = {
      LUA = "$(LUA)",
      INSTALL_CMOD = "$(LIBDIR)",
      INSTALL_LMOD = "$(LUADIR)",
   },
}
