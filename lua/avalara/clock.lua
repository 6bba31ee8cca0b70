--- The Lua layer's one clock: every expiry, leeway, lease, ttl and deadline
-- of the library reads it, so a test can move time instead of sleeping.
--
-- `now()` is seconds since the epoch with sub-second precision where
-- LuaSocket is there, `time()` the whole seconds (as `os.time()`).
-- `advance(s)` moves this Lua state's clock forward (tests only: a token then
-- looks older to the client, never to the server); `reset()` undoes it. The
-- C core's own `token:is_expired()` reads the system clock and is not moved.
-- @module avalara.clock
local M = {}

local ok_socket, socket = pcall(require, "socket")
local real = ok_socket and socket.gettime or os.time

local offset = 0

--- Seconds since the epoch, fractional where the platform allows.
-- @treturn number
function M.now() return real() + offset end

--- Whole seconds since the epoch (what `os.time()` gives, moved as `now`).
-- @treturn integer
function M.time() return math.floor(real() + offset) end

--- Moves this Lua state's clock `seconds` forward (tests: instead of sleeping).
-- @tparam number seconds
function M.advance(seconds)
  assert(type(seconds) == "number" and seconds >= 0, "clock.advance: seconds must be a number >= 0")
  offset = offset + seconds
end

--- Puts the clock back to the system's.
function M.reset() offset = 0 end

return M
