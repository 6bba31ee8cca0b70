--- The LuaJIT FFI binding of the C core (issue 27, item 2): `core.request` over the plain C
-- ABI (include/avalara/abi.h) of the same avalara/core.so, called through `ffi` instead of the
-- Lua C API. Same arguments, same results (status, body, headers | nil, err), same errors
-- (every field, tostring); docs/core.md, "The LuaJIT FFI binding".
--
--    local binding = require "avalara.ffi"          -- false where it cannot load (not LuaJIT ...)
--    local status, body, headers = binding.request{ url = url, token = token }
--    local ex = binding.prepare_request{ url = url, token = token }   -- ex:wire(), ex:status(200), ...
--
-- The classic binding's libcurl handles (one pool per Lua state, `core.abi_client`) and one set
-- of request/result structs per Lua state. Calls with a `transport` function, and calls whose
-- arguments the classic binding raises for or refuses, go to the classic binding with the same
-- table (avalara.ffi.request).
-- @module avalara.ffi

local abi = require "avalara.ffi.abi"
if not abi then return false end

local core = require "avalara.core"
local build = require "avalara.ffi.request"
local response = require "avalara.ffi.response"
local exchange = require "avalara.ffi.exchange"

local ffi, C = abi.ffi, abi.C
local type, error = type, error

-- the per-state cdata, made once and reused by every call
local st = {
  ffi = ffi,
  spec = ffi.new("avl_req_spec"),
  err = ffi.new("avl_err"),
  res = ffi.new("avl_result"),
  size = ffi.new("size_t[1]"),
  bytes = ffi.new("char *[1]"),
  nheaders = 16,
  anchor = {},
}
st.headers = ffi.new("const char *[?]", st.nheaders)
function st.grow(n)
  local size = st.nheaders
  while size < n do size = size * 2 end
  local list = ffi.new("const char *[?]", size)
  ffi.copy(list, st.headers, ffi.sizeof("const char *") * st.nheaders)
  st.headers, st.nheaders = list, size
  return list
end

-- The classic binding's pool of libcurl handles as an avl_client (core.abi_client): both
-- bindings send on the same kept-alive connections (a warm_up through one serves the other).
-- The userdata is kept here, and `core` with it, whose functions keep the pool alive.
local client_ud, client
local function the_client()
  if client then return client end
  client_ud = core.abi_client()
  client = ffi.cast("avl_client *", client_ud)
  return client
end

local M = { abi = abi, name = "ffi", core = core }

-- The avl_req for args (built, the spec's anchors released), or nil when the classic binding
-- must take the call.
local function new_req(args)
  if not build.fill(st, args) then
    build.release(st)
    return nil
  end
  local req = C.avl_req_new(st.spec, st.err)
  local auth = st.auth
  build.release(st)
  if req == nil then
    -- "argument" (a URL the policy refuses, ...): the classic binding raises it in its words
    if st.err.kind ~= nil and ffi.string(st.err.kind) == "argument" then return nil end
    error("out of memory", 0)
  end
  return req, auth
end

--- `core.request(args)` over the C ABI.
-- @tparam table args as `core.request`'s
-- @return status, body, headers, or nil, err
function M.request(args)
  if type(args) ~= "table" then return core.request(args) end
  local pool = the_client()
  local req = new_req(args)
  if req == nil then return core.request(args) end
  local resp = C.avl_resp_new(req)
  if resp == nil then
    C.avl_req_free(req)
    error("out of memory", 0)
  end
  C.avl_client_perform(pool, req, resp, st.res)
  -- protected: a raise while reading (out of memory) must still wipe and free both
  local ok, a, b, c = pcall(response.outcome, st, C, req, resp, args.response_headers == false)
  C.avl_resp_free(resp)
  C.avl_req_free(req)
  if not ok then error(a, 0) end
  if a == nil then return nil, b end
  if c == nil then return a, b end
  return a, b, c
end

--- `core.prepare_request(args)` over the C ABI: an exchange (avalara.ffi.exchange) with the
-- classic exchange's `request`, `finish`, `perform`, `close`, and, for a transport that reads
-- raw bytes, `wire`, `status`, `header`, `body`, `fail`, `conclude`.
-- @tparam table args
-- @return the exchange (or the classic binding's, for a call it takes)
function M.prepare_request(args)
  if type(args) ~= "table" then return core.prepare_request(args) end
  local req, auth = new_req(args)
  if req == nil then return core.prepare_request(args) end
  return exchange.new(st, C, ffi.gc(req, C.avl_req_free), args, the_client, auth)
end

return M
