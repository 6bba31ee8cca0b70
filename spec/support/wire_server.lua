-- A raw HTTP/1.1 server for the cosocket transport's reader (started by
-- spec/support/hostile.lua's spawn as `lua5.4 wire_server.lua DIR`): each
-- path answers with bytes cut into several writes, with pauses between
-- them, the way a slow network delivers a response. Keep-alive: a
-- connection serves requests until the client closes it or an answer
-- says close. One connection at a time.
local socket = require "socket"

local srv = require("spec.support.listen")(arg[1])

local BODY = '{"hsCode":"610910","status":"CLASSIFIED"}'

-- Writes each piece separately (TCP_NODELAY), 20 ms apart.
local function dribble(c, pieces)
  for i, p in ipairs(pieces) do
    if i > 1 then socket.sleep(0.02) end
    c:send(p)
  end
end

local head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
local routes = {
  -- the header block and the body cut mid-line, mid-name and mid-body
  ["/split"] = function(c)
    local all = head .. "Content-Length: " .. #BODY .. "\r\nX-Long:" .. (" v"):rep(40) .. "\r\n\r\n" .. BODY
    dribble(c, { all:sub(1, 10), all:sub(11, 40), all:sub(41, -12), all:sub(-11) })
    return true
  end,
  -- chunks split across writes, with a chunk extension and a trailer
  ["/chunked"] = function(c)
    dribble(c, { head .. "Transfer-Encoding: chunked\r\n\r\n", "a;ext=1\r\n" .. BODY:sub(1, 10) .. "\r\n",
      ("%x"):format(#BODY - 10) .. "\r\n" .. BODY:sub(11, 20), BODY:sub(21) .. "\r\n0\r\n",
      "X-Trailer: 1\r\n\r\n" })
    return true
  end,
  -- no length: the body ends when the server closes
  ["/to-close"] = function(c)
    dribble(c, { head .. "\r\n" .. BODY:sub(1, 5), BODY:sub(6) })
    return false
  end,
  -- bare LF line endings
  ["/lf"] = function(c)
    c:send("HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: " .. #BODY .. "\n\n" .. BODY)
    return true
  end,
  -- a Content-Length the server does not keep
  ["/truncated"] = function(c)
    c:send(head .. "Content-Length: " .. (#BODY + 50) .. "\r\n\r\n" .. BODY)
    return false
  end,
  -- more than the client's max_body (4096 in the spec), without a length
  ["/big"] = function(c)
    c:send(head .. "\r\n")
    for _ = 1, 10 do c:send(("x"):rep(1000)) end
    return false
  end,
}

while true do
  local c = srv:accept()
  if c then
    c:setoption("tcp-nodelay", true)
    c:settimeout(5)
    while true do
      local line = c:receive("*l")
      if not line then break end
      local path = line:match("^%u+ (%S+)")
      repeat line = c:receive("*l") until not line or line == ""
      local route = routes[path or ""]
      local keep
      if route then keep = route(c) else c:send("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"); keep = true end
      if not keep then break end
    end
    c:close()
  end
end
