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

local M = {}

local METHODS = { GET = "HTTP_GET", POST = "HTTP_POST", PUT = "HTTP_PUT", DELETE = "HTTP_DELETE",
  PATCH = "HTTP_PATCH", HEAD = "HTTP_HEAD" }

-- nil and an `avalara.error` of `kind`, with `extra` fields (status, retryable).
local function fail(kind, message, extra)
  local t = { kind = kind, message = message }
  for k, v in pairs(extra or {}) do t[k] = v end
  return nil, core.error(t)
end

--- The transport function for an internal location (`transport(request) -> response | nil, err`).
-- @string location the location's prefix, e.g. "/_avalara"
-- @treturn function
function M.transport(location)
  if type(location) ~= "string" or not location:match("^/") then
    error("avalara.transport.subrequest: 'location' must be a path such as \"/_avalara\"", 2)
  end
  location = location:gsub("/+$", "")
  return function(req)
    -- the path becomes the subrequest's URI and the two values go into
    -- proxy_set_header lines, which nginx does not check: the same
    -- refusals as the cosocket transport's (the core makes them first)
    local why = unfit(req)
    if why then return fail("transport", "request not sent: " .. why) end
    local path = req.url:match("^https?://[^/?#]+([^#]*)$")
    if not path then return fail("transport", "not an http(s) URL") end
    if path == "" then path = "/" end
    local method = METHODS[req.method]
    if not method then return fail("transport", "method " .. tostring(req.method) .. " not supported") end
    local headers = req.headers or {}
    local res = ngx.location.capture(location .. path, {
      method = ngx[method],
      body = req.body,
      vars = { avalara_authorization = headers.Authorization or "",
               avalara_content_type = headers["Content-Type"] or "" },
    })
    if not res or not res.status then return fail("transport", "subrequest to " .. location .. " failed") end
    if res.truncated then
      return fail(res.status >= 200 and res.status < 300 and "parse" or "http",
        "response truncated (subrequest to " .. location .. ")", { status = res.status, retryable = true })
    end
    -- nginx's own failures to reach the upstream come back as 502/504 pages
    return { status = res.status, headers = res.header, body = res.body }
  end
end

return M
