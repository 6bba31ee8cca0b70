-- The listening half of spec/support/hostile.lua's protocol, for the small
-- servers it spawns (`lua5.4 SCRIPT DIR ...`): binds a free loopback port
-- and writes it to DIR/port atomically (DIR/port.tmp, then a rename), so
-- the spec never reads half a number.
--
--   local srv, port = require("spec.support.listen")(arg[1])
local socket = require "socket"

return function(dir)
  assert(dir, "usage: SCRIPT DIR ...")
  local srv = assert(socket.bind("127.0.0.1", 0))
  local _, port = srv:getsockname()
  local f = assert(io.open(dir .. "/port.tmp", "w"))
  f:write(port)
  f:close()
  os.rename(dir .. "/port.tmp", dir .. "/port")
  return srv, port
end
