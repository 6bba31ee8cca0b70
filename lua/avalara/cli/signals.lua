--- SIGINT and SIGTERM for a long command (`hscode batch`): the first asks it
-- to stop sending and finish what is in flight, the second to stop at once.
--
-- Lua has no signals of its own. Debian's lua-posix is built for Lua 5.1 to
-- 5.3 only, so this uses libuv's signal handles (Debian's lua-luv, built for
-- 5.4 and LuaJIT too): libuv's handler only notes the signal, and `check`
-- (called by the batch between polls, at least every 0.2 s) runs libuv's
-- loop once without blocking to read it. No Lua code runs inside the signal
-- handler, so an interrupt never cuts a Lua frame in the middle (no stack
-- trace, no half-written journal record).
-- @module avalara.cli.signals
local uv = require "avalara.cli.uv"

local M = {}

--- The exit status of a signal, as shells report it (128 + number).
M.STATUS = { sigint = 130, sigterm = 143 }

--- Catches SIGINT and SIGTERM until `close`.
-- @tparam[opt] function on_signal `(name, count)` after each one (to say what happens now)
-- @treturn table `{check = function() -> nil | "stop" | "abort", signal = first name, count, close}`
function M.catch(on_signal)
  local state = { count = 0, handles = {} }
  for _, name in ipairs { "sigint", "sigterm" } do
    local h = uv.new_signal()
    h:start(name, function(signame)
      state.count = state.count + 1
      state.signal = state.signal or signame
      if on_signal then on_signal(signame, state.count) end
    end)
    state.handles[#state.handles + 1] = h
  end
  --- What the signals so far ask for.
  function state.check()
    uv.run("nowait")
    if state.count == 0 then return nil end
    return state.count == 1 and "stop" or "abort"
  end
  --- Gives the signals back to their default action.
  function state.close()
    for _, h in ipairs(state.handles) do
      h:stop()
      h:close()
    end
    state.handles = {}
    uv.run("nowait")
  end
  return state
end

return M
