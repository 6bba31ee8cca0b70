--- The transport a client composes: libcurl (the core performs each
-- exchange), or a Lua function (`avalara.transport.lua`), chosen per call
-- (in nginx: cosockets, or libcurl where cosockets cannot run), with the
-- client's transport options added to every exchange.
--
--    local t = transport.new{ options = { timeout = 10 }, lua = nil, choose = nil, many = nil }
--    local status, body, headers = t:exchange("request", { method = "GET", url = url, token = tok })
-- @module avalara.transport
local core = require "avalara.core"
local lua_transport = require "avalara.transport.lua"

local M = {}

--- The transport options an exchange takes (as `avalara.core` knows them).
M.KEYS = { "timeout", "connect_timeout", "cafile", "capath", "proxy", "verify", "user_agent", "max_body",
  "allow_http" }

--- A client's transport.
-- @type Transport
local Transport = {}
Transport.__index = Transport
M.Transport = Transport

--- Makes a transport.
-- @tparam table t `{options = transport options, lua = a Lua transport function or nil,
-- choose = a function giving the Lua transport for a call made now (or nil: libcurl),
-- many = a runner of many Lua exchanges at once (nginx light threads) or nil}`
-- @treturn Transport
function M.new(t)
  local binding = M.binding(t.binding)
  -- The options as a flat {k1, v1, k2, v2, ...} list made once: no pairs()
  -- walk over a hash on every call.
  local list = {}
  for _, k in ipairs(M.KEYS) do
    if t.options[k] ~= nil then list[#list + 1], list[#list + 2] = k, t.options[k] end
  end
  return setmetatable({ options = t.options, list = list, lua = t.lua, choose = t.choose, many = t.many,
    binding = binding and "ffi" or "classic", request = binding and binding.request or core.request,
    prepare_ffi = binding and binding.prepare_request }, Transport)
end

--- The FFI binding (`avalara.ffi`) a transport runs its "request" exchanges on over libcurl, or
-- nil for the classic one: `want` ("ffi", "classic" or nil), else the environment's
-- AVALARA_BINDING, else the FFI binding wherever it loads (LuaJIT). Grants, refresh and revoke,
-- `request_many` and exchanges with a Lua transport stay on the classic binding, except requests
-- through a transport that moves an exchange's bytes (cosockets, subrequests: `avalara.transport.lua`
-- `register`).
-- @string[opt] want
-- @treturn table|nil
function M.binding(want)
  -- a sandbox may have no `os` (nor `package`: then the FFI binding does not load)
  want = want or (type(os) == "table" and os.getenv and os.getenv("AVALARA_BINDING")) or nil
  if want == "classic" then return nil end
  local ok, b = pcall(require, "avalara.ffi")
  return ok and b or nil
end

--- Adds the transport options to `args` (those it does not set) and returns it.
-- @tparam table args
-- @treturn table
function Transport:with_options(args)
  local list = self.list
  for i = 1, #list, 2 do
    local k = list[i]
    if args[k] == nil then args[k] = list[i + 1] end
  end
  return args
end

--- The Lua transport for a call made now, or nil for libcurl.
function Transport:current()
  if self.choose then return self.choose() end
  return self.lua
end

--- `{lua, parallel, options, binding}`: the Lua function for a call made now (nil: libcurl), whether
-- many exchanges run at once, a copy of the options, the core's binding ("ffi" or "classic").
-- @treturn table
function Transport:info()
  local lua = self:current()
  local o = {}
  for k, v in pairs(self.options) do o[k] = v end
  return { lua = lua, parallel = lua == nil or self.many ~= nil, options = o, binding = self.binding }
end

--- A core exchange prepared with the options and not sent.
-- @string kind "request" or a grant's name
-- @tparam table args
function Transport:prepare(kind, args)
  self:with_options(args)
  if kind == "request" then return core.prepare_request(args) end
  return core.prepare_grant(kind, args)
end

--- One exchange.
-- @string kind "request" or a grant's name
-- @tparam table args
-- @return status, body, headers (a request) or a core token (a grant), or nil, err
function Transport:exchange(kind, args)
  self:with_options(args)
  local lua = self:current()
  if not lua then
    if kind == "request" then return self.request(args) end
    return core[kind](args)
  end
  local ex
  if kind ~= "request" then ex = core.prepare_grant(kind, args)
  elseif self.prepare_ffi and lua_transport.runs_bytes(lua) then ex = self.prepare_ffi(args)
  else ex = core.prepare_request(args) end
  return lua_transport.run(lua, ex, args)
end

--- Many requests (`core.request_many`): with a Lua transport one at a time, or through `many`.
-- @tparam table reqs
-- @tparam table args
-- @treturn table a list aligned with `reqs`: `{status, body, headers}` or `{err}`
function Transport:exchange_many(reqs, args)
  self:with_options(args)
  local lua = self:current()
  if not lua then return core.request_many(reqs, args) end
  local exchanges = {}
  for i, r in ipairs(reqs) do exchanges[i] = core.prepare_request(self:with_options(r)) end
  return lua_transport.run_many(exchanges, lua, self.many, args.concurrency)
end

return M
