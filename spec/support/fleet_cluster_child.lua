-- A plain-Lua process of the fleet on a Redis Cluster, for spec/integration/fleet/cluster_spec.lua.
--
--   lua spec/support/fleet_cluster_child.lua EMULATOR_URL SEEDS PREFIX GO_FILE STOP_FILE
--
-- SEEDS: "host:port,host:port,...". Prints "ready", waits for GO_FILE, then calls sections()
-- every 20 ms until STOP_FILE exists (60 s at most) and prints "first call ok" after its first
-- successful call, then "ok N failed M" and the first failure, if any.
-- Warnings (a node down) go to stderr.
local fleet = require "avalara.fleet"
local socket = require "socket"

local url, seeds, prefix, go, stop_file = arg[1], arg[2], arg[3], arg[4], arg[5]
local nodes = {}
for s in seeds:gmatch("[^,]+") do nodes[#nodes + 1] = s end

local client = fleet.new { environment = "local", emulator_url = url, account_id = "2000000001",
  license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001, timeout = 10,
  redis = { cluster = nodes, prefix = prefix } }

io.stdout:write("ready\n")
io.stdout:flush()
local deadline = socket.gettime() + 30
while not io.open(go) and socket.gettime() < deadline do socket.sleep(0.002) end

local ok_n, failed, first = 0, 0, nil
local stop = socket.gettime() + 60
while socket.gettime() < stop and not io.open(stop_file) do
  local ok, err = client:sections()
  if ok then
    ok_n = ok_n + 1
    if ok_n == 1 then io.stdout:write("first call ok\n"); io.stdout:flush() end
  else
    failed = failed + 1
    first = first or (tostring(err.kind) .. " " .. tostring(err.message))
  end
  socket.sleep(0.02)
end
io.stdout:write(("ok %d failed %d\n"):format(ok_n, failed))
if first then io.stdout:write("first failure: ", first, "\n") end
