-- A small hostile HTTP server for the hardening specs (started by
-- spec/support/hostile.lua as `lua5.4 hostile_server.lua DIR`): each path
-- gives a crafted answer a real server could send. One connection at a
-- time, one request per connection. It writes its port to DIR/port and
-- serves until it is killed.
local cjson = require "cjson"

local srv = require("spec.support.listen")(arg[1])

local function form_decode(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- JSON string contents as a server that escapes "/" writes them (cjson does).
local function json_string(s)
  return cjson.encode(s):sub(2, -2)
end

local function html(s)
  return (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
    ["'"] = "&#39;" }))
end

local function respond(c, status, headers, body)
  local out = { "HTTP/1.1 " .. status, "Connection: close", "Content-Length: " .. #body }
  for k, v in pairs(headers) do out[#out + 1] = k .. ": " .. v end
  c:send(table.concat(out, "\r\n") .. "\r\n\r\n" .. body)
end

-- What a request sent, for the echoes: its body, raw and decoded, and its
-- Authorization header, raw and with a Basic credential decoded.
local function sent(req)
  local auth = req.headers.authorization or ""
  local basic = auth:match("^Basic (.+)$")
  local decoded_auth = auth
  if basic then
    local mime = require "mime"
    decoded_auth = form_decode(mime.unb64(basic) or "")
  end
  return req.body or "", form_decode(req.body or ""), auth, decoded_auth
end

local routes = {}

-- 400 with the request echoed as sent (form-encoded) in the body, in
-- error_description, and in X-Correlation-Id.
routes["/echo"] = function(c, req)
  local body, _, auth = sent(req)
  local doc = '{"error":"invalid_client","error_description":"got ' .. json_string(body)
    .. ' auth=' .. json_string(auth) .. '"}'
  respond(c, "400 Bad Request", { ["Content-Type"] = "application/json",
    ["X-Correlation-Id"] = body:sub(1, 200) }, doc)
end

-- The same, decoded first, then JSON-escaped with "\/".
routes["/echo-decoded"] = function(c, req)
  local _, decoded, _, decoded_auth = sent(req)
  local doc = '{"error":"invalid_client","error_description":"got ' .. json_string(decoded)
    .. ' auth=' .. json_string(decoded_auth) .. '"}'
  respond(c, "400 Bad Request", { ["Content-Type"] = "application/json",
    ["X-Correlation-Id"] = decoded:gsub("[\r\n]", ""):sub(1, 200) }, doc)
end

-- An API-style error (core.request) echoing the Authorization header.
routes["/api-echo"] = function(c, req)
  local _, _, auth = sent(req)
  local doc = '{"error":{"code":"BearerTokenInvalid","message":"unknown ' .. json_string(auth)
    .. '","details":[{"code":"BearerTokenInvalid","number":37,"description":"' .. json_string(auth) .. '"}]}}'
  respond(c, "401 Unauthorized", { ["Content-Type"] = "application/json", ["X-Correlation-Id"] = auth }, doc)
end

-- A gateway's HTML page echoing the decoded request.
routes["/echo-html"] = function(c, req)
  local _, decoded, _, decoded_auth = sent(req)
  respond(c, "502 Bad Gateway", { ["Content-Type"] = "text/html" },
    "<html><body><pre>" .. html(decoded) .. " " .. html(decoded_auth) .. "</pre></body></html>")
end

-- A 4 MiB JSON array as an error body.
routes["/bigarray"] = function(c)
  respond(c, "500 Internal Server Error", { ["Content-Type"] = "application/json" },
    "[" .. string.rep("0,", 2 * 1024 * 1024 - 16) .. "0]") -- just under max_body
end

-- Retry-After with 30 digits.
routes["/retry-after-huge"] = function(c)
  respond(c, "503 Service Unavailable", { ["Content-Type"] = "application/json", ["Retry-After"] = ("9"):rep(30) },
    '{"error":{"code":"ServiceUnavailable","message":"later"}}')
end

-- A gzip-compressed JSON body when the request accepts gzip (else plain), with the
-- Accept-Encoding lines it had counted and its User-Agent echoed.
routes["/gzip"] = function(c, req)
  local n = 0
  for _, l in ipairs(req.lines) do
    if l:lower():find("^accept%-encoding:") then n = n + 1 end
  end
  local plain = '{"hsCode":"610910","status":"CLASSIFIED"}'
  local gz = ("1f8b0800000000000203ab56ca2876ce4f4955b252323334b0343450d2512a2e"
    .. "492c292d068a38fb3806077bba79baba28d50200816032ab29000000"):gsub("%x%x",
    function(h) return string.char(tonumber(h, 16)) end)
  local gzip = (req.headers["accept-encoding"] or ""):find("gzip") ~= nil
  respond(c, "200 OK", { ["Content-Type"] = "application/json", ["Content-Encoding"] = gzip and "gzip" or nil,
    ["X-Accept-Encoding-Lines"] = tostring(n), ["X-User-Agent"] = req.headers["user-agent"] or "" },
    gzip and gz or plain)
end

-- The request's header lines and method, as JSON.
routes["/lines"] = function(c, req)
  respond(c, "200 OK", { ["Content-Type"] = "application/json" },
    cjson.encode { method = req.method, lines = req.lines, body = req.body or "" })
end

routes["/ok"] = function(c)
  respond(c, "200 OK", { ["Content-Type"] = "application/json" }, '{"a":1,"b":[1,2,3],"c":{"d":"e"}}')
end

while true do
  local c = srv:accept()
  if c then
    c:settimeout(5)
    local line = c:receive("*l")
    local method, path = (line or ""):match("^(%S+) (%S+)")
    local req = { method = method, path = path, headers = {}, lines = {} }
    while true do
      local l = c:receive("*l")
      if not l or l == "" then break end
      req.lines[#req.lines + 1] = l
      local k, v = l:match("^([^:]+):%s*(.*)$")
      if k then req.headers[k:lower()] = v end
    end
    local len = tonumber(req.headers["content-length"])
    req.body = len and len > 0 and c:receive(len) or nil
    local route = routes[(path or ""):match("^[^?]*")]
    if route then route(c, req) else respond(c, "404 Not Found", {}, "") end
    c:close()
  end
end
