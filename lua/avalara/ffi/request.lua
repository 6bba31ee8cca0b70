--- A `core.request` argument table as an `avl_req_spec` (include/avalara/abi.h), for the FFI
-- binding: the same fields, defaults and checks as the classic binding's (src/lua/request.c,
-- src/lua/options.c). What the hot path does not handle itself (a wrong type or value, which the
-- classic binding raises for, a `transport` function, a NUL byte in a header value, a token
-- object it cannot read) is left to the classic binding: `fill` returns false and the caller
-- calls `avalara.core` with the same table, so raised messages and refusals have one source.
-- @module avalara.ffi.request

local M = {}

local type, tostring, floor = type, tostring, math.floor
local find = string.find

local SIZE_MAX_HALF = 2 ^ 63 - 1   -- (double)(SIZE_MAX / 2) on 64-bit, as options.c compares

-- methods seen valid (letters only, under 32 bytes: avl_abi_method); strings are never collected
-- from a weak table, so both caches are emptied when they grow past CACHE_MAX (names made at run time)
local CACHE_MAX = 256
local good_method = { GET = true, POST = true, PUT = true, DELETE = true, PATCH = true, HEAD = true }
local n_methods, n_names = 6, 0
-- header names seen valid (avl_abi_header: no ':', space, tab, CR, LF, NUL; not empty)
local good_name = {}

local function seconds(v) return v == nil or (type(v) == "number" and v > 0) end
local function flag(v) return v == nil or type(v) == "boolean" end
local function text(v) return v == nil or (type(v) == "string" and not find(v, "\0", 1, true)) end

-- The transport options as options.c accepts them (else: false, the classic binding raises).
local function options_ok(args)
  if not (seconds(args.timeout) and seconds(args.connect_timeout) and flag(args.verify) and flag(args.allow_http)
      and args.transport == nil) then
    return false
  end
  local mb = args.max_body
  if mb ~= nil and not (type(mb) == "number" and mb >= 1 and mb <= SIZE_MAX_HALF) then return false end
  local cafile, capath, proxy, ua = args.cafile, args.capath, args.proxy, args.user_agent
  if cafile == nil and capath == nil and proxy == nil and ua == nil then return true end
  if not (text(cafile) and text(capath) and text(proxy) and text(ua)) then return false end
  if ua ~= nil and find(ua, "[%z\1-\8\10-\31\127]") then return false end
  if proxy ~= nil and find(proxy, "[%z\1-\32\127]") then return false end
  return true
end

local function method_ok(m)
  if good_method[m] then return true end
  if type(m) ~= "string" or #m == 0 or #m >= 32 or find(m, "%A") then return false end
  if n_methods >= CACHE_MAX then good_method, n_methods = {}, 0 end
  good_method[m], n_methods = true, n_methods + 1
  return true
end

local function name_ok(n)
  if good_name[n] then return true end
  if type(n) ~= "string" or #n == 0 or find(n, "[%z\r\n: \t]") then return false end
  if n_names >= CACHE_MAX then good_name, n_names = {}, 0 end
  good_name[n], n_names = true, n_names + 1
  return true
end

-- A token object's Authorization value, read at every call: a token is renewed in place
-- (token:refresh()) and wiped by token:close(), so a kept copy would send a stale or a closed
-- credential; nil for what is not a readable token (the classic binding then raises).
local function authorization_of(tok) return tok:authorization() end
local function token_authorization(tok)
  local ok, v = pcall(authorization_of, tok)
  if not ok or type(v) ~= "string" then return nil end
  return v
end

local encode
local function json_encoder()
  if encode then return encode end
  local cjson = package.loaded.cjson
  if type(cjson) ~= "table" or type(cjson.encode) ~= "function" then
    local ok, mod = pcall(require, "cjson")
    if not ok or type(mod) ~= "table" or type(mod.encode) ~= "function" then return nil end
    cjson = mod
  end
  encode = cjson.encode
  return encode
end

--- Fills `st.spec` (an `avl_req_spec`, reused) from `args`; the Lua strings its pointers point
-- into are kept in `st.anchor` until the request is built. Returns true, or false when the
-- classic binding must take the call (it raises, or refuses, with its own words).
-- @tparam table st the binding's per-state cdata (`spec`, `headers`, `nheaders`, `anchor`)
-- @tparam table args a `core.request` table
-- @treturn boolean
function M.fill(st, args)
  if not options_ok(args) then return false end
  if not flag(args.response_headers) then return false end
  local spec, anchor = st.spec, st.anchor
  local method, url = args.method, args.url
  if method ~= nil and not method_ok(method) then return false end
  if type(url) ~= "string" then return false end
  spec.method = method
  spec.url = url
  spec.url_len = #url

  local tok, auth = args.token, nil
  spec.token, spec.token_len, spec.authorization, spec.authorization_len = nil, 0, nil, 0
  if type(tok) == "string" then
    spec.token = tok
    spec.token_len = #tok
  elseif tok ~= nil then
    if type(tok) ~= "userdata" then return false end
    auth = token_authorization(tok)
    if auth == nil then return false end
  else
    auth = args.authorization
    if auth ~= nil and type(auth) ~= "string" then return false end
  end
  if auth ~= nil then
    spec.authorization = auth
    spec.authorization_len = #auth
    anchor[1] = auth
  end
  -- the Authorization value this request sends (a token object's as read now), for an exchange
  -- that must be read by the classic binding later (`avalara.ffi.exchange`)
  st.auth = auth

  local headers = args.headers
  spec.headers = nil
  if headers ~= nil then
    if type(headers) ~= "table" then return false end
    local list, n = st.headers, 0
    for k, v in pairs(headers) do
      if not name_ok(k) then return false end
      local tv = type(v)
      if tv == "number" then v = tostring(v) elseif tv ~= "string" then return false end
      if find(v, "\0", 1, true) then return false end  -- classic: refused, in its words
      if n + 3 > st.nheaders then list = st.grow(n + 3) end
      list[n], list[n + 1] = k, v
      anchor[#anchor + 1] = v
      n = n + 2
    end
    if n > 0 then
      list[n] = nil
      spec.headers = list
    end
  end

  local body = args.body
  if type(body) == "table" then
    local enc = json_encoder()
    if not enc then return false end
    local ok, s = pcall(enc, body)
    if not ok or type(s) ~= "string" then return false end
    body = s
    anchor[#anchor + 1] = s
  elseif body ~= nil and type(body) ~= "string" then
    return false
  end
  spec.body = body
  spec.body_len = body and #body or 0

  spec.timeout = args.timeout or 0
  spec.connect_timeout = args.connect_timeout or 0
  spec.max_body = args.max_body and floor(args.max_body) or 0
  spec.allow_http = args.allow_http and 1 or 0
  spec.insecure = args.verify == false and 1 or 0
  spec.cafile, spec.capath, spec.proxy, spec.user_agent = args.cafile, args.capath, args.proxy, args.user_agent
  return true
end

--- Lets go of what `fill` kept.
-- @tparam table st
function M.release(st)
  st.auth = nil
  local anchor = st.anchor
  for i = #anchor, 1, -1 do anchor[i] = nil end
end

return M
