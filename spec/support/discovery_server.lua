-- An issuer's discovery document for spec/integration/client/device_spec.lua
-- (started by spec/support/hostile.lua's spawn as `lua5.4 discovery_server.lua
-- DIR EMULATOR_URL`): GET /.well-known/openid-configuration answers a document
-- naming this server as the issuer, whose endpoints are the emulator's; GET /bare/.well-known/openid-configuration
-- one without device_authorization_endpoint. One request per connection.
local cjson = require "cjson"

local srv = require("spec.support.listen")(arg[1])
local emu = arg[2]

while true do
  local c = srv:accept()
  if c then
    c:settimeout(5)
    local line, host = c:receive("*l") or "", "127.0.0.1"
    repeat
      local l = c:receive("*l")
      host = l and l:match("^[Hh]ost:%s*(%S+)") or host
    until not l or l == ""
    local path = line:match("^GET (%S+)") or ""
    -- the issuer is this server (OpenID Connect Discovery 4.3: the document names the issuer asked)
    local issuer = "http://" .. host .. path:gsub("/%.well%-known/openid%-configuration$", "")
    local doc = { issuer = issuer, token_endpoint = emu .. "/connect/token",
      revocation_endpoint = emu .. "/connect/revocation" }
    if path == "/.well-known/openid-configuration" then
      doc.device_authorization_endpoint = emu .. "/connect/deviceauthorization"
    end
    local status = path:match("/%.well%-known/openid%-configuration$") and "200 OK" or "404 Not Found"
    local body = cjson.encode(doc)
    c:send("HTTP/1.1 " .. status .. "\r\nContent-Type: application/json\r\nContent-Length: " .. #body
      .. "\r\nConnection: close\r\n\r\n" .. body)
    c:close()
  end
end
