-- A server that echoes the credential it was sent after N bytes of padding,
-- so that the echo straddles the limit of the error field it lands in
-- (started by spec/support/hostile.lua's spawn as `lua5.4
-- straddle_server.lua DIR`). Paths:
--
--   /token/FIELD/ENC/N   a token endpoint: echoes the client_secret
--   /api/FIELD/ENC/N     an API: echoes the bearer token
--
-- FIELD is where the echo goes: desc (error_description), uri (error_uri),
-- code (the error code), id (X-Correlation-Id), body (an HTML page),
-- message and detail (AvaTax error message / first detail's description),
-- bearer (an RFC 6750 error_description). ENC is how it is echoed: raw,
-- form, pct (upper-case hex), lower (lower-case hex), json (escaped, "\/"
-- for "/"), html. One request per connection; serves until killed.
local cjson = require "cjson"

local srv = require("spec.support.listen")(arg[1])

local function decode(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function pct(s, space)
  return (s:gsub("[^%w%-%._~]", function(c)
    if c == " " and space then return space end
    return ("%%%02X"):format(c:byte())
  end))
end

local encodings = {
  raw = function(s) return s end,
  form = function(s) return pct(s, "+") end,
  pct = function(s) return pct(s) end,
  lower = function(s) return (pct(s, "+"):gsub("%%%x%x", string.lower)) end,
  json = function(s) return cjson.encode(s):sub(2, -2) end,
  html = function(s)
    return (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
  end,
}

local function respond(c, status, headers, body)
  local out = { "HTTP/1.1 " .. status, "Connection: close", "Content-Length: " .. #body }
  for k, v in pairs(headers) do out[#out + 1] = k .. ": " .. v end
  c:send(table.concat(out, "\r\n") .. "\r\n\r\n" .. body)
end

local function answer(c, side, field, echo)
  local json = { ["Content-Type"] = "application/json" }
  if field == "body" then
    return respond(c, "502 Bad Gateway", { ["Content-Type"] = "text/html" }, "<html>" .. echo .. "</html>")
  elseif field == "id" then
    return respond(c, side == "api" and "401 Unauthorized" or "400 Bad Request",
      { ["Content-Type"] = "application/json", ["X-Correlation-Id"] = echo },
      side == "api" and '{"error":"invalid_token"}' or '{"error":"invalid_client"}')
  end
  local doc
  if side == "token" then
    doc = { error = "invalid_client" }
    if field == "desc" then doc.error_description = echo
    elseif field == "uri" then doc.error_uri = echo
    elseif field == "code" then doc.error = echo end
  elseif field == "bearer" then
    doc = { error = "invalid_token", error_description = echo }
  else
    doc = { error = { code = field == "code" and echo or "BearerTokenInvalid",
      message = field == "message" and echo or "bad token",
      details = { { number = 37, description = field == "detail" and echo or "bad token" } } } }
  end
  respond(c, side == "api" and "401 Unauthorized" or "400 Bad Request", json, cjson.encode(doc))
end

while true do
  local c = srv:accept()
  if c then
    c:settimeout(5)
    local line = c:receive("*l")
    local side, field, enc, n = (line or ""):match("^%S+ /(%a+)/(%a+)/(%a+)/(%d+)")
    local headers = {}
    while true do
      local l = c:receive("*l")
      if not l or l == "" then break end
      local k, v = l:match("^([^:]+):%s*(.*)$")
      if k then headers[k:lower()] = v end
    end
    local len = tonumber(headers["content-length"])
    local body = len and len > 0 and c:receive(len) or ""
    local secret
    if side == "token" then
      secret = decode(body:match("client_secret=([^&]*)") or "")
    else
      secret = (headers.authorization or ""):match("^Bearer (.*)$") or ""
    end
    if side and encodings[enc] then
      answer(c, side, field, ("x"):rep(tonumber(n)) .. encodings[enc](secret))
    else
      respond(c, "404 Not Found", {}, "")
    end
    c:close()
  end
end
