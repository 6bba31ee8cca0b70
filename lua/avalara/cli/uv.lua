--- libuv for the `hscode` command (Debian's lua-luv), loaded once per Lua state.
--
-- Every luv module instance shares libuv's default loop and closes it when
-- it is collected. A host that unloads modules and loads them again (busted's
-- insulated spec files; an application that reloads its plugins) would get
-- a second instance whose loop the first one's collection closes under it (a
-- crash in the next `uv.run`). The instance is therefore kept in the
-- registry, and every `require` of this module returns the same one.
-- @module avalara.cli.uv
local registry = debug.getregistry()
local KEY = "avalara.cli.uv"

local uv = registry[KEY]
if not uv then
  uv = require "luv"
  registry[KEY] = uv
end
return uv
