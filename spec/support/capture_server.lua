-- A raw HTTP/1.1 listener for the header-injection specs (started by
-- spec/support/hostile.lua's spawn as `lua5.4 capture_server.lua DIR`):
-- it answers every request with 200 and a JSON body `{"raw": "<the bytes of
-- the request line and header block, as received>", "n": <requests so
-- far>}`, so a spec sees exactly what went on the wire. `GET /count`
-- answers `{"n": <requests so far, this one excluded>}`. One request per
-- connection; serves until killed.
local cjson = require "cjson"

local srv = require("spec.support.listen")(arg[1])
local n = 0

while true do
  local c = srv:accept()
  if c then
    c:settimeout(5)
    local lines = {}
    while true do
      local l = c:receive("*l")
      if not l or l == "" then break end
      lines[#lines + 1] = l
    end
    local len = tonumber(table.concat(lines, "\n"):lower():match("\ncontent%-length:%s*(%d+)"))
    if len and len > 0 then c:receive(len) end
    local body
    if (lines[1] or ""):match("^GET /count ") then
      body = cjson.encode { n = n }
    else
      n = n + 1
      body = cjson.encode { raw = table.concat(lines, "\r\n") .. "\r\n", n = n }
    end
    c:send("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: " .. #body
      .. "\r\n\r\n" .. body)
    c:close()
  end
end
