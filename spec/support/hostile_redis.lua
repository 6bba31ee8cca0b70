-- A hostile "Redis" for spec/integration/fleet/redis_security_spec.lua (started by
-- spec/support/hostile.lua as `lua5.4 hostile_redis.lua DIR MODE`): it reads
-- a command and answers every connection with one crafted reply, then keeps
-- the connection open until the client closes it. One connection at a time.
--
-- MODE: nest   300 000 nested one-element arrays (a recursive parser's stack)
--       huge   a bulk string of 2^40 bytes announced, then 64 MiB of it sent
--       line   a simple string 64 MiB long, without its end
--       array  an array of 2^31 elements announced, then elements sent
--       number an integer where a string is expected (GET)
local socket = require "socket"

local srv = require("spec.support.listen")(arg[1])
local mode = arg[2]

local CHUNK = string.rep("x", 64 * 1024)

-- Sends `head`, then `chunk` `count` times (stops when the client is gone).
local function stream(c, head, chunk, count)
  if not c:send(head) then return end
  for _ = 1, count do
    if not c:send(chunk) then return end
  end
end

while true do
  local c = srv:accept()
  if c then
    c:settimeout(5)
    c:receive("*l") -- the first line of a command is enough
    if mode == "nest" then
      c:send(string.rep("*1\r\n", 300000) .. ":1\r\n")
    elseif mode == "huge" then
      stream(c, "$1099511627776\r\n", CHUNK, 1024)
    elseif mode == "line" then
      stream(c, "+", CHUNK, 1024)
    elseif mode == "array" then
      stream(c, "*2147483648\r\n", string.rep(":1\r\n", 16384), 1024)
    elseif mode == "number" then
      c:send(":5\r\n")
    end
    c:settimeout(2)
    c:receive(1) -- until the client closes (or 2 s)
    c:close()
  end
  socket.sleep(0)
end
