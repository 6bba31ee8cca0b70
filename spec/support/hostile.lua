-- Starts a small Lua HTTP server in its own lua5.4 process on a free
-- loopback port, and stops it by pid. The server script is run as
-- `lua5.4 SCRIPT DIR ARGS...`; it binds port 0 and writes the port to
-- DIR/port (atomically: DIR/port.tmp, then a rename).
--
--   local hostile = require "spec.support.hostile"
--   local h = hostile.start()      -- spec/support/hostile_server.lua; h.url = "http://127.0.0.1:PORT"
--   local s = hostile.spawn(path, { "2" })
--   ...
--   h:stop()
local socket = require "socket"
local emu = require "spec.support.emulator"

local M = {}
local Server = {}
Server.__index = Server

function M.spawn(script, args)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. emu.shell_quote(dir)))
  local quoted = {}
  for i, a in ipairs(args or {}) do quoted[i] = emu.shell_quote(a) end
  -- a plain interpreter: a sanitizer preload is for the process under test only
  local cmd = "unset LD_PRELOAD; cd " .. emu.shell_quote(emu.repo_root()) .. " && lua5.4 " .. emu.shell_quote(script)
    .. " " .. emu.shell_quote(dir) .. " " .. table.concat(quoted, " ") .. " >/dev/null 2>&1 </dev/null & echo $!"
  local p = assert(io.popen(cmd, "r"))
  local pid = tonumber(p:read("*l"))
  p:close()
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    local f = io.open(dir .. "/port")
    if f then
      local port = f:read("*n")
      f:close()
      os.execute("rm -rf " .. emu.shell_quote(dir))
      return setmetatable({ pid = pid, url = "http://127.0.0.1:" .. port }, Server)
    end
    socket.sleep(0.02)
  end
  os.execute("kill " .. pid .. " 2>/dev/null")
  error(script .. " did not start")
end

function M.start()
  return M.spawn("spec/support/hostile_server.lua")
end

function Server:stop()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pid = nil
  end
end

return M
