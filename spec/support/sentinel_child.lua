-- A plain-Lua process of a fleet on Redis Sentinel, for spec/integration/fleet/sentinel_spec.lua.
--
--   lua spec/support/sentinel_child.lua EMULATOR_URL SENTINELS MASTER SECRETS_FILE PREFIX STOP_FILE
--
-- SENTINELS: "host:port,host:port,..."; SECRETS_FILE: the master's password on its first line,
-- the sentinels' on the second. Prints "ready", then calls sections() every 20 ms until
-- STOP_FILE exists, and prints "ok N failed M" and the first failure, if any.
local fleet = require "avalara.fleet"
local socket = require "socket"

local url, list, master, secrets, prefix, stop = arg[1], arg[2], arg[3], arg[4], arg[5], arg[6]
local f = assert(io.open(secrets))
local password, sentinel_password = f:read("*l"), f:read("*l")
f:close()
local sentinels = {}
for a in list:gmatch("[^,]+") do sentinels[#sentinels + 1] = a end

local client = fleet.new { environment = "local", emulator_url = url, account_id = "2000000001",
  license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001, timeout = 10,
  on_warning = function(msg) io.stderr:write(msg, "\n") end,
  redis = { sentinels = sentinels, master = master, password = password, sentinel_password = sentinel_password,
    prefix = prefix } }

io.stdout:write("ready\n")
io.stdout:flush()
local ok, failed, first = 0, 0, nil
local deadline = socket.gettime() + 60
while not io.open(stop) and socket.gettime() < deadline do
  local r, err = client:sections()
  if r then ok = ok + 1 else
    failed = failed + 1
    first = first or (tostring(err.kind) .. " " .. tostring(err.message))
  end
  socket.sleep(0.02)
end
io.stdout:write("ok ", ok, " failed ", failed, "\n", first and ("first " .. first .. "\n") or "")
