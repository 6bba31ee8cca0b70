--- The Lua layer's one clock and its one sleep: every expiry, leeway, lease,
-- ttl and deadline of the library reads `now`, every backoff, polling wait
-- and lock wait goes through `sleep`, so a test can move time instead of
-- sleeping and an embedding host can supply both.
--
-- `now()` is seconds since the epoch, `time()` the whole seconds (as
-- `os.time()`); `sleep(s)` waits `s` seconds. By default they come from, in
-- order: the host's functions given to `set`; inside nginx `ngx.sleep` (in
-- the phases with cosockets) and `ngx.now`; LuaSocket's `gettime`/`sleep`;
-- `os.time` (whole seconds) and the `sleep` command (`os.execute`). A
-- sandbox without `os` and LuaSocket must call `set` first; reading the clock
-- there without it raises an error that says so.
--
-- `advance(s)` moves this Lua state's clock forward (tests only: a token then
-- looks older to the client, never to the server); `reset()` undoes it. The
-- C core's own `token:is_expired()` reads the system clock and is not moved.
-- @module avalara.clock
local nginx = require "avalara.transport.nginx"

local M = {}

-- Optional: a sandbox may have no `require`, no LuaSocket, no `os`.
local ok_socket, socket = pcall(require, "socket")
if not ok_socket or type(socket) ~= "table" then socket = nil end
local os_lib = os
local os_time = os_lib and os_lib.time
local os_execute = os_lib and os_lib.execute
local os_clock = os_lib and os_lib.clock

local HOW = "give the host's clock with avalara.clock.set{ now = function() return seconds end, "
  .. "sleep = function(seconds) end } (docs/embedding.md, Sandboxes)"

local host_now, host_sleep
local offset = 0

local function ngx_lib()
  return nginx.in_nginx() and ngx or nil
end

-- The platform's clock: LuaSocket, nginx's (updated now), else os.time.
local function system_now()
  if socket and socket.gettime then return socket.gettime() end
  local n = ngx_lib()
  if n and n.now then
    if n.update_time then n.update_time() end
    return n.now()
  end
  if os_time then return os_time() end
  error("avalara.clock: no clock in this Lua state (no LuaSocket, no os.time): " .. HOW, 0)
end

-- The platform's sleep: nginx's where it yields, LuaSocket, the sleep command, else a busy wait on os.clock.
local function system_sleep(s)
  local n = ngx_lib()
  if n and n.sleep and nginx.mode() == "cosocket" then return n.sleep(s) end
  if socket and socket.sleep then return socket.sleep(s) end
  if os_execute then
    os_execute("sleep " .. string.format("%.3f", s))
    return
  end
  if os_clock then
    local stop = os_clock() + s
    repeat until os_clock() >= stop
    return
  end
  error("avalara.clock: no way to sleep in this Lua state (no LuaSocket, no os): " .. HOW, 0)
end

local function read()
  if not host_now then return system_now() end
  local t = host_now()
  if type(t) ~= "number" then
    error("avalara.clock: the host's now() returned " .. type(t) .. " (it must return seconds since the epoch)", 0)
  end
  return t
end

local gettime = socket and socket.gettime

--- Seconds since the epoch, fractional where the clock allows.
-- @treturn number
function M.now()
  -- the usual case first, one call deep (a call reads the clock twice)
  if gettime and not host_now then return gettime() + offset end
  return read() + offset
end

--- Whole seconds since the epoch (what `os.time()` gives, moved as `now`).
-- @treturn integer
function M.time() return math.floor(read() + offset) end

--- Waits `seconds` (nothing for 0 or less): the host's sleep, else the platform's.
-- @tparam number seconds
function M.sleep(seconds)
  if type(seconds) ~= "number" then
    error("clock.sleep: 'seconds' must be a number (got " .. type(seconds) .. ")", 2)
  end
  if seconds <= 0 then return end
  if host_sleep then return host_sleep(seconds) end
  return system_sleep(seconds)
end

--- Gives this Lua state the host's clock and sleep (an embedding host, a
-- sandbox, a game loop): `{now = function() return seconds end, sleep =
-- function(seconds) end}`, either may be left out (the platform's is kept);
-- `set(nil)` goes back to the platform's. `now` must return seconds since
-- the epoch (tokens carry absolute expiry times). Returns the previous
-- functions, to give back to `set` later.
-- @tparam[opt] table hooks `{now, sleep}`
-- @treturn table the previous `{now, sleep}`
function M.set(hooks)
  if hooks ~= nil and type(hooks) ~= "table" then
    error("clock.set: expected a table {now = function, sleep = function} or nil (got " .. type(hooks) .. ")", 2)
  end
  hooks = hooks or {}
  for _, k in ipairs { "now", "sleep" } do
    local f = hooks[k]
    local mt = getmetatable(f)
    if f ~= nil and type(f) ~= "function" and not (type(mt) == "table" and mt.__call) then
      error("clock.set: '" .. k .. "' must be a function (got " .. type(f) .. ")", 2)
    end
  end
  local previous = { now = host_now, sleep = host_sleep }
  host_now, host_sleep = hooks.now, hooks.sleep
  return previous
end

--- Moves this Lua state's clock `seconds` forward (tests: instead of sleeping).
-- @tparam number seconds
function M.advance(seconds)
  assert(type(seconds) == "number" and seconds >= 0, "clock.advance: seconds must be a number >= 0")
  offset = offset + seconds
end

--- Puts the clock back to the system's (the offset of `advance`; the host's functions stay).
function M.reset() offset = 0 end

return M
