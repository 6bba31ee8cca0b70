--- RESP2, the protocol of Redis, over any socket with LuaSocket's reading
-- and writing methods (`send(data)`, `receive(n)`): a LuaSocket TCP or
-- LuaSec TLS socket in plain Lua, an `ngx.socket.tcp` cosocket inside
-- nginx. No I/O of its own, so one parser serves both.
--
-- Replies: simple strings and bulk strings are Lua strings, integers are
-- numbers, arrays are tables, a null bulk string or array is `false`
-- (`M.null`), an error reply is `nil, message, "redis"`, a socket failure
-- `nil, message, "socket"`, a reply that is not RESP or is beyond the
-- limits below `nil, message, "protocol"` (after either of the last two the
-- connection must be closed: it is no longer in step with the server).
--
-- Limits, so that a hostile or broken server (or a port that is not Redis)
-- costs a bounded amount of memory and stack: a reply holds at most
-- `M.MAX_REPLY` bytes in all (16 MiB: strings, and every element's header),
-- nests arrays at most `M.MAX_DEPTH` deep (32), and a header or simple
-- string line is at most `M.MAX_LINE` bytes (64 KiB). A declared length
-- beyond the budget fails before anything is read or allocated.
-- @module avalara.resp.protocol
local core = require "avalara.core"

local M = {}

--- The value of a null reply (a missing key).
M.null = false

--- The most bytes one reply may hold (bulk strings, lines), in all.
M.MAX_REPLY = 16 * 1024 * 1024
--- The deepest nesting of arrays in one reply.
M.MAX_DEPTH = 32
--- The longest line (a header, a simple string, an error).
M.MAX_LINE = 64 * 1024

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
      error("avalara.resp: argument " .. i .. " of " .. tostring(args[1]) .. " must be a string or number", 3)
    end
    out[#out + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  return table.concat(out)
end

local function too_large(what)
  return nil, ("the reply is too large (%s; at most %d bytes are read): not the Redis expected?")
    :format(what, M.MAX_REPLY), "protocol"
end

-- One line without its CRLF, read a byte at a time up to `MAX_LINE` (a
-- line-reading `receive("*l")` has no bound: a server sending bytes without
-- a newline would fill the memory). Every line has its type byte and at
-- least its CRLF: the first read takes 3 bytes. `st.left`: the reply's byte budget.
local function line(sock, st)
  local s, err = sock:receive(3)
  if not s then return nil, err, "socket" end
  local limit = math.min(M.MAX_LINE, st.left)
  while s:byte(-1) ~= 10 do -- "\n"
    if #s >= limit then
      if limit < M.MAX_LINE then return too_large("a line beyond the reply's budget") end
      return nil, "a reply line is longer than " .. M.MAX_LINE .. " bytes: not a Redis server?", "protocol"
    end
    local c
    c, err = sock:receive(1)
    if not c then return nil, err, "socket" end
    s = s .. c
  end
  st.left = st.left - #s
  if s:byte(-2) ~= 13 then return nil, "not a Redis reply (is this port a Redis server?)", "protocol" end
  return s:sub(1, -3)
end

-- A length or integer: digits with an optional minus sign, nothing else.
local function integer(s)
  if not s:find("^%-?%d+$") or #s > 18 then return nil end
  return tonumber(s)
end

local read

-- A bulk string of `n` bytes and its CRLF.
local function bulk(sock, n, st)
  if n < 0 then return M.null end
  if n + 2 > st.left then return too_large("a string of " .. n .. " bytes") end
  st.left = st.left - n - 2
  local data, err = sock:receive(n + 2)
  if not data then return nil, err, "socket" end
  if data:sub(-2) ~= "\r\n" then return nil, "not a Redis reply (a string without its CRLF)", "protocol" end
  return data:sub(1, n)
end

-- An array of `n` replies; an element that is an error fails the whole
-- array once it is read (the connection stays in step).
local function array(sock, n, st, depth)
  if n < 0 then return M.null end
  if depth >= M.MAX_DEPTH then
    return nil, "the reply nests arrays more than " .. M.MAX_DEPTH .. " deep: not the Redis expected?", "protocol"
  end
  -- every element takes at least 3 bytes (":0\r\n" is 4, "+\r\n" 3): a count beyond the budget fails now
  if n * 3 > st.left then return too_large("an array of " .. n .. " elements") end
  local out, first_err = {}, nil
  for i = 1, n do
    local v, err, kind = read(sock, st, depth + 1)
    if v == nil then
      if kind ~= "redis" then return nil, err, kind end
      first_err = first_err or err
      v = M.null
    end
    out[i] = v
  end
  if first_err then return nil, first_err, "redis" end
  return out
end

-- One reply at nesting `depth`, within the budget `st.left`.
read = function(sock, st, depth)
  local l, err, kind = line(sock, st)
  if not l then return nil, err, kind end
  local t, rest = l:sub(1, 1), l:sub(2)
  if t == "+" then return rest end
  if t == "-" then return nil, rest, "redis" end
  local n = integer(rest)
  if t == ":" and n then return n end
  if n and n >= -1 then
    if t == "$" then return bulk(sock, n, st) end
    if t == "*" then return array(sock, n, st, depth) end
  end
  return nil, "not a Redis reply (is this port a Redis server?)", "protocol"
end

--- Reads one reply, in the parser's own shape (for `avalara.resp.client`,
-- which maps each fault to its error code).
-- @param sock the socket
-- @return the value, or nil, message, fault ("redis" for an error reply, "socket" for the
-- connection's failure, "protocol" for what is not RESP or is beyond the limits)
function M.read_reply(sock)
  return read(sock, { left = M.MAX_REPLY }, 0)
end

--- Reads one reply.
-- @param sock the socket
-- @return the value, or nil, err: an `avalara.error` of kind "store" whose `fault` is "redis"
-- (an error reply: `code` "redis"), "socket" (`code` "unreachable") or "protocol" (not RESP,
-- or beyond the limits: `code` "protocol")
function M.read(sock)
  local value, message, fault = M.read_reply(sock)
  if value ~= nil or message == nil then return value end
  local code = fault == "socket" and "unreachable" or fault
  return nil, core.error { kind = "store", code = code, fault = fault,
    message = tostring(message), retryable = fault == "socket" }
end

return M
