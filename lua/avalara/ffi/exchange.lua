--- An exchange of the FFI binding (`require("avalara.ffi").prepare_request(args)`): an `avl_req`
-- built and not sent. Two ways to run it:
--
-- * as the classic exchange (`avalara.exchange`, docs/core.md "Exchanges"): `ex:request()` gives
--   the request table, `ex:finish(response)` / `ex:finish(nil, err)` reads a transport's answer,
--   `ex:perform()` sends it over libcurl; `request` and `finish` are the classic exchange's own,
--   made from the same arguments when first needed, so their reading is the same code;
-- * raw bytes (a cosocket transport): `ex:wire()` gives the HTTP/1.1 request bytes, then the
--   answer is fed with `ex:status(n)`, `ex:header(name, value)`, `ex:body(s)` (each true, or
--   false once a limit stops the reading) or `ex:fail(kind, message)`, and `ex:conclude()` gives
--   what `ex:finish` would: status, body, headers, or nil, err.
-- @module avalara.ffi.exchange

local core = require "avalara.core"
local response = require "avalara.ffi.response"

local M = {}

local Exchange = {}
Exchange.__index = Exchange

local DONE = "attempt to use a finished or closed exchange"

--- An exchange over `req` (an `avl_req`, freed by the exchange or its collection).
-- @tparam table st the binding's per-state cdata
-- @param C the library
-- @param req the `avl_req`
-- @tparam table args the arguments it was built from (for the classic methods)
-- @tparam function client gives the binding's `avl_client`
-- @tparam[opt] string auth the Authorization value `req` sends, when it came from a token object or
-- `args.authorization` (the classic methods are made with it, not with the token as it is then)
function M.new(st, C, req, args, client, auth)
  return setmetatable({ st = st, C = C, req = req, args = args, client = client, auth = auth }, Exchange)
end

local function live(self, fn)
  if type(self) ~= "table" or getmetatable(self) ~= Exchange then
    error(("bad self to '%s'"):format(fn), 3)
  end
  if self.done then error(DONE, 3) end
end

-- The classic exchange of the same request, made when first needed (`request`, `finish`): with the
-- credential this exchange was built with. A token object may have been renewed in place or closed
-- since (another coroutine, while this one's transport yielded): the error would then be redacted
-- against another secret than the one sent, or raise.
local function classic(self)
  if self.ex then return self.ex end
  local args = self.args
  if self.auth then
    local copy = {}
    for k, v in pairs(args) do copy[k] = v end
    copy.token, copy.authorization = nil, self.auth
    args = copy
  end
  self.ex = core.prepare_request(args)
  return self.ex
end

local function resp_of(self)
  local r = self.resp
  if r then return r end
  local C, ffi = self.C, self.st.ffi
  r = C.avl_resp_new(self.req)
  if r == nil then error("out of memory", 0) end
  self.resp = ffi.gc(r, C.avl_resp_free)
  return self.resp
end

--- Frees the request and the response now (wiping them); true. Safe twice.
function Exchange:close()
  local C, ffi = self.C, self.st.ffi
  self.done = true
  if self.resp then
    C.avl_resp_free(ffi.gc(self.resp, nil))
    self.resp = nil
  end
  if self.req then
    C.avl_req_free(ffi.gc(self.req, nil))
    self.req = nil
  end
  if self.ex then self.ex:close() end
  return true
end

--- The transport request table, as the classic exchange's `request()`.
function Exchange:request()
  live(self, "exchange:request")
  return classic(self):request()
end

--- Reads a transport's answer, as the classic exchange's `finish(response)` / `finish(nil, err)`.
function Exchange:finish(...)
  live(self, "exchange:finish")
  local ok, ex = pcall(classic, self)
  self.ex = nil -- it finishes (and releases) itself
  self:close()
  if not ok then error(ex, 0) end
  return ex:finish(...)
end

--- Sends the request over libcurl (the binding's `avl_client`): status, body, headers, or nil, err.
function Exchange:perform()
  live(self, "exchange:perform")
  local st, C = self.st, self.C
  C.avl_client_perform(self.client(), self.req, resp_of(self), st.res)
  local a, b, c = response.outcome(st, C, self.req, self.resp, self.args.response_headers == false)
  self:close()
  if a == nil then return nil, b end
  if c == nil then return a, b end
  return a, b, c
end

--- What the request sends to: its URL, its method (upper-cased) and its timeout in seconds (the
-- default applied), as the classic `request()` table has them.
-- @treturn string url
-- @treturn string method
-- @treturn number timeout
function Exchange:target()
  live(self, "exchange:target")
  local C, ffi = self.C, self.st.ffi
  return ffi.string(C.avl_req_url(self.req)), ffi.string(C.avl_req_method(self.req)), C.avl_req_timeout(self.req)
end

--- The request as HTTP/1.1 bytes (request line, Host, headers, Content-Length, body), or nil, err
-- when it must not be sent (the classic `request()`'s error).
function Exchange:wire()
  live(self, "exchange:wire")
  local st, C, ffi = self.st, self.C, self.st.ffi
  local out = st.bytes
  if C.avl_req_wire(self.req, out, st.size, st.err) ~= 0 then return nil, response.error(ffi, st.err) end
  local s = ffi.string(out[0], st.size[0])
  C.avl_bytes_free(out[0], st.size[0])
  out[0] = nil
  return s
end

--- The status of the response (a 1xx one drops the headers read so far).
-- @int n
function Exchange:status(n)
  live(self, "exchange:status")
  self.C.avl_resp_status(resp_of(self), n)
  return true
end

--- One header of the final response: true, or false once a limit stops the reading.
-- @string name
-- @string value
function Exchange:header(name, value)
  live(self, "exchange:header")
  value = tostring(value)
  return self.C.avl_resp_header(resp_of(self), name, #name, value, #value) == 0
end

--- Body bytes: true, or false once a limit (max_body) stops the reading.
-- @string s
function Exchange:body(s)
  live(self, "exchange:body")
  return self.C.avl_resp_body(resp_of(self), s, #s) == 0
end

--- A transport failure of one's own: kind "transport", "timeout" or "tls"; message redacted.
-- @string kind
-- @string message
function Exchange:fail(kind, message)
  live(self, "exchange:fail")
  message = message ~= nil and tostring(message) or nil
  self.C.avl_resp_fail(resp_of(self), kind, message, message and #message or 0)
  return true
end

--- What the response fed means: status, body, headers, or nil, err (as `finish`).
function Exchange:conclude()
  live(self, "exchange:conclude")
  local st, C = self.st, self.C
  local resp = resp_of(self)
  C.avl_result_of(self.req, resp, st.res)
  local a, b, c = response.outcome(st, C, self.req, resp, self.args.response_headers == false)
  self:close()
  if a == nil then return nil, b end
  if c == nil then return a, b end
  return a, b, c
end

function Exchange:__tostring()
  if self.done then return "avalara.exchange (request, done)" end
  local ffi = self.st.ffi
  local url = ffi.string(self.C.avl_req_url(self.req))
  return ("avalara.exchange (request %s %s)"):format(ffi.string(self.C.avl_req_method(self.req)),
    url:match("^[^?#]*"))
end

Exchange.__close = Exchange.close
M.Exchange = Exchange

return M
