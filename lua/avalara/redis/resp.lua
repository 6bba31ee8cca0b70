--- RESP2, the protocol of Redis, over any socket with LuaSocket's reading
-- and writing methods (`send(data)`, `receive("*l")`, `receive(n)`): a
-- LuaSocket TCP or LuaSec TLS socket in plain Lua, an `ngx.socket.tcp`
-- cosocket inside nginx. No I/O of its own, so one parser serves both.
--
-- Replies: simple strings and bulk strings are Lua strings, integers are
-- numbers, arrays are tables, a null bulk string or array is `false`
-- (`M.null`), an error reply is `nil, message, "redis"`, a socket or
-- protocol failure `nil, message, "socket"` (the connection must then be
-- closed: it is no longer in step with the server).
-- @module avalara.redis.resp
local M = {}

--- The value of a null reply (a missing key).
M.null = false

--- A command as RESP: an array of bulk strings.
-- @tparam table args the command's words (strings or numbers)
-- @treturn string the bytes to send
function M.encode(args)
  local out = { "*" .. #args .. "\r\n" }
  for i = 1, #args do
    local a = args[i]
    if type(a) == "number" then
      a = (a == math.floor(a) and a >= -2^53 and a <= 2^53) and string.format("%d", a) or tostring(a)
    elseif type(a) ~= "string" then
      error("avalara.redis: argument " .. i .. " of " .. tostring(args[1]) .. " must be a string or number", 3)
    end
    out[#out + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  return table.concat(out)
end

local read

-- A bulk string of `n` bytes and its CRLF.
local function bulk(sock, n)
  if n < 0 then return M.null end
  local data, err = sock:receive(n + 2)
  if not data then return nil, err, "socket" end
  return data:sub(1, n)
end

-- An array of `n` replies; an element that is an error fails the whole
-- array once it is read (the connection stays in step).
local function array(sock, n)
  if n < 0 then return M.null end
  local out, first_err = {}, nil
  for i = 1, n do
    local v, err, kind = read(sock)
    if v == nil then
      if kind == "socket" then return nil, err, kind end
      first_err = first_err or err
      v = M.null
    end
    out[i] = v
  end
  if first_err then return nil, first_err, "redis" end
  return out
end

--- Reads one reply.
-- @param sock the socket
-- @return the value, or nil, message, kind ("redis" for an error reply, "socket" otherwise)
function M.read(sock)
  local line, err = sock:receive("*l")
  if not line then return nil, err, "socket" end
  local t, rest = line:sub(1, 1), line:sub(2)
  if t == "+" then return rest end
  if t == "-" then return nil, rest, "redis" end
  local n = tonumber(rest)
  if t == ":" and n then return n end
  if t == "$" and n then return bulk(sock, n) end
  if t == "*" and n then return array(sock, n) end
  return nil, "not a Redis reply (is this port a Redis server?)", "socket"
end
read = M.read

return M
