-- An issuer's discovery document for spec/integration/client/device_spec.lua
-- (started by spec/support/hostile.lua's spawn as `lua5.4 discovery_server.lua
-- DIR EMULATOR_URL`): GET /.well-known/openid-configuration answers a document
-- whose endpoints are the emulator's; GET /bare/.well-known/openid-configuration
-- one without device_authorization_endpoint. One request per connection.
local cjson = require "cjson"

local srv = require("spec.support.listen")(arg[1])
local emu = arg[2]

while true do
  local c = srv:accept()
  if c then
    c:settimeout(5)
    local line = c:receive("*l") or ""
    repeat local l = c:receive("*l") until not l or l == ""
    local path = line:match("^GET (%S+)") or ""
    local doc = { issuer = emu, token_endpoint = emu .. "/connect/token",
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
