-- A webhook receiver for the Items specs (started by spec/support/hostile.lua
-- as `lua5.4 webhook_receiver.lua DIR LOG [FAIL_FIRST]`): it accepts POSTs on
-- loopback, one connection at a time, and appends each delivery to the file
-- LOG as one JSON line {path, headers, body, answered} (flushed at once),
-- then answers 200, or 500 to the first FAIL_FIRST deliveries, so the
-- sender's retries show. It writes its port to DIR/port and serves until it
-- is killed.
local cjson = require "cjson"

local log_path = assert(arg[2], "usage: webhook_receiver.lua DIR LOG [FAIL_FIRST]")
local fail_first = tonumber(arg[3]) or 0
local log = assert(io.open(log_path, "a"))
local srv = require("spec.support.listen")(arg[1])

local seen = 0
while true do
  local c = srv:accept()
  if c then
    c:settimeout(5)
    local line = c:receive("*l")
    local method, path = (line or ""):match("^(%u+) (%S+) HTTP/1%.%d$")
    local headers = {}
    while true do
      local h = c:receive("*l")
      if not h or h == "" then break end
      local k, v = h:match("^([^:]+):%s*(.*)$")
      if k then headers[k:lower()] = v end
    end
    local body = c:receive(tonumber(headers["content-length"]) or 0) or ""
    if method == "POST" then
      seen = seen + 1
      local failing = seen <= fail_first
      log:write(cjson.encode { path = path, headers = headers, body = body, answered = failing and 500 or 200 }, "\n")
      log:flush()
      c:send(failing and "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        or "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}")
    else
      c:send("HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    end
    c:close()
  end
end
