--- Who holds a lock kept in a file that processes share (`avalara.store.file`):
-- this process's identity, and whether the holder a lock row names is gone.
--
-- A holder is its pid, the process's start time (clock ticks after boot, from
-- `/proc/<pid>/stat`), the machine's boot id, host name and PID namespace
-- (Linux `/proc`). A holder is gone when its lock's ttl lapsed, or when it
-- is in this PID namespace of this host and its process no longer runs (or
-- is a zombie, or its pid was reused), or when it took the lock before this
-- host last booted. A holder in another namespace (a container sharing the
-- volume) or on another host, or where `/proc` cannot tell, is gone only at
-- its ttl.
-- @module avalara.store.holder
local sys = require("avalara.core").sys
local now = require("avalara.clock").now

local M = {}

-- What a /proc file holds, or nil.
local function proc_file(path)
  local f = io and io.open(path, "rb")
  local text = f and f:read("*a")
  if f then f:close() end
  return text
end

-- pid, state and start time (clock ticks after boot) of a process from
-- /proc/<pid>/stat; nil when it cannot be read.
local function proc_stat(pid)
  local s = proc_file("/proc/" .. pid .. "/stat")
  local id, rest = (s or ""):match("^(%d+) .*%) (.*)$")
  if not rest then return nil end
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  return tonumber(id), fields[1], fields[20]
end

local pidns = sys.stat("/proc/self/ns/pid")
local self_pid, _, self_start = proc_stat("self")

--- This process as a lock holder: `{pid, started, boot, host, pidns}` (a
-- field is nil where `/proc` cannot tell).
M.self = { pid = self_pid, started = self_start,
  boot = (proc_file("/proc/sys/kernel/random/boot_id") or ""):match("%S+"),
  host = (proc_file("/proc/sys/kernel/hostname") or ""):match("%S+"),
  pidns = pidns and string.format("%d", pidns.ino) }

--- Whether the holder of a lock row is gone.
-- @tparam table row `{pid, started, boot, expires, host, pidns}` as the store keeps them
-- @treturn boolean
function M.gone(row)
  if tonumber(row[4]) <= now() then return true end
  local me = M.self
  -- a row of an earlier version, or /proc that cannot tell: wait for the ttl
  if not (me.boot and me.host and me.pidns and me.pid and row[1] and row[3] and row[5] and row[6]) then
    return false
  end
  if row[5] ~= me.host then return false end   -- another host or container: its processes are not visible here
  if row[3] ~= me.boot then return true end    -- taken before this host last booted
  -- another PID namespace (a container sharing the file): its pid means nothing here
  if row[6] ~= me.pidns then return false end
  local alive = sys.process_exists(tonumber(row[1]))
  if alive == false then return true end       -- no such process (kill(pid, 0): true even where /proc hides it)
  local pid, state, start = proc_stat(string.format("%d", row[1]))
  if not pid then return false end             -- hidden (hidepid) or unreadable: it runs
  return state == "Z" or start ~= row[2]       -- a zombie, or the pid was reused
end

return M
