--- A transport on nginx subrequests: each exchange goes to an internal
-- location of your nginx.conf that `proxy_pass`es to the API, so nginx's own
-- HTTP client moves the bytes (keep-alive upstream pools, TLS in C, no Lua
-- on the wire). An alternative to the cosocket transport for the hot path of
-- a busy site (`make bench-openresty` measures both).
--
--    upstream avalara_api { server hscode.api.avalara.com:443; keepalive 32; }
--    location /_avalara/ {
--        internal;
--        proxy_pass_request_headers off;         # never forward the caller's own headers
--        proxy_set_header Authorization $avalara_authorization;
--        proxy_set_header Content-Type $avalara_content_type;
--        proxy_set_header Accept application/json;
--        proxy_set_header Host hscode.api.avalara.com;
--        proxy_http_version 1.1;
--        proxy_set_header Connection "";
--        proxy_ssl_server_name on;
--        proxy_ssl_name hscode.api.avalara.com;
--        proxy_ssl_verify on;
--        proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;
--        proxy_pass https://avalara_api/;
--    }
--    # The transport gives each subrequest $avalara_authorization and
--    # $avalara_content_type. nginx needs a `set` to know the variables; one
--    # in the proxying location would reset them, so it is in a location of
--    # its own, never used.
--    location = /_avalara_variables {
--        internal;
--        set $avalara_authorization "";
--        set $avalara_content_type "";
--        return 404;
--    }
--
--    client = avalara.new{ ..., shared_dict = "avalara_tokens",
--                          transport = require("avalara.transport.subrequest").transport("/_avalara") }
--
-- The request's path and query go to the location (`/_avalara` + path); its
-- scheme and host are the location's business. Subrequests exist in the
-- request phases (rewrite, access, content), not in timers: use the cosocket
-- transport (the default) there. Timeouts are the location's
-- (`proxy_connect_timeout`, `proxy_read_timeout`).
-- @module avalara.transport.subrequest
local core = require "avalara.core"
local unfit = require("avalara.transport.cosocket").unfit
local lua_transport = require "avalara.transport.lua"

local find, sub = string.find, string.sub

local M = {}

local METHODS = { GET = "HTTP_GET", POST = "HTTP_POST", PUT = "HTTP_PUT", DELETE = "HTTP_DELETE",
  PATCH = "HTTP_PATCH", HEAD = "HTTP_HEAD" }

-- nil and an `avalara.error` of `kind`, with `extra` fields (status, retryable).
local function fail(kind, message, extra)
  local t = { kind = kind, message = message }
  for k, v in pairs(extra or {}) do t[k] = v end
  return nil, core.error(t)
end

-- The subrequest for `path` ("/..." with its query): nil, err, or the capture's response table.
local function capture(location, method, path, body, authorization, content_type)
  local verb = METHODS[method]
  if not verb then return fail("transport", "method " .. tostring(method) .. " not supported") end
  local res = ngx.location.capture(location .. path, {
    method = ngx[verb],
    body = body,
    vars = { avalara_authorization = authorization or "", avalara_content_type = content_type or "" },
  })
  if not res or not res.status then return fail("transport", "subrequest to " .. location .. " failed") end
  if res.truncated then
    return fail(res.status >= 200 and res.status < 300 and "parse" or "http",
      "response truncated (subrequest to " .. location .. ")", { status = res.status, retryable = true })
  end
  -- nginx's own failures to reach the upstream come back as 502/504 pages
  return res
end

-- The value of header `name` in the request bytes' head (before `hend`), or nil. The core wrote
-- the bytes ("Name: value\r\n" lines, values without CR or LF): a plain find, no pattern.
local function header_value(bytes, name, hend)
  local at = find(bytes, name, 1, true)
  if not at or at > hend then return nil end
  local e = find(bytes, "\r\n", at + #name, true)
  return sub(bytes, at + #name, e - 1)
end

-- One exchange of the FFI binding (its bytes from `ex:wire()`, already checked by the core): the
-- request line's target, the two headers and the body read from the bytes; the answer fed to `ex`.
local function run_bytes(location, ex, bytes, method)
  method = method or "GET"
  local sp = find(bytes, " ", 1, true)
  local eol = find(bytes, " HTTP/1.1\r\n", sp, true)
  local hend = find(bytes, "\r\n\r\n", eol, true)
  if not (sp and eol and hend) then return fail("transport", "not an http(s) URL") end
  local path = sub(bytes, sp + 1, eol - 1)
  local body
  if header_value(bytes, "\r\nContent-Length: ", hend) then body = sub(bytes, hend + 4) end
  local res, err = capture(location, method, path, body, header_value(bytes, "\r\nAuthorization: ", hend),
    header_value(bytes, "\r\nContent-Type: ", hend))
  if not res then return nil, err end
  return lua_transport.feed(ex, res.status, res.header, res.body)
end

--- The transport function for an internal location (`transport(request) -> response | nil, err`).
-- @string location the location's prefix, e.g. "/_avalara"
-- @treturn function
function M.transport(location)
  if type(location) ~= "string" or not location:match("^/") then
    error("avalara.transport.subrequest: 'location' must be a path such as \"/_avalara\"", 2)
  end
  location = location:gsub("/+$", "")
  local fn = function(req)
    -- the path becomes the subrequest's URI and the two values go into
    -- proxy_set_header lines, which nginx does not check: the same
    -- refusals as the cosocket transport's (the core makes them first)
    local why = unfit(req)
    if why then return fail("transport", "request not sent: " .. why) end
    local path = req.url:match("^https?://[^/?#]+([^#]*)$")
    if not path then return fail("transport", "not an http(s) URL") end
    if path == "" then path = "/" end
    local headers = req.headers or {}
    local res, err = capture(location, req.method, path, req.body, headers.Authorization, headers["Content-Type"])
    if not res then return nil, err end
    return { status = res.status, headers = res.header, body = res.body }
  end
  -- exchanges that give their bytes (the FFI binding's) skip the request table
  lua_transport.register(fn, function(ex, bytes, _, method) return run_bytes(location, ex, bytes, method) end)
  return fn
end

return M
