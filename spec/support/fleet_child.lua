-- A plain-Lua process of the fleet for spec/integration/fleet/fleet_spec.lua: a fleet
-- client (token, rate budget, cache on Redis) on the emulator.
--
--   lua spec/support/fleet_child.lua MODE EMULATOR_URL REDIS_PORT PASSWORD_FILE PREFIX REQUESTS/WINDOW COUNT [GO_FILE]
--
-- MODE "classify": COUNT classifications of items F-<pid>-<i>, one after the
-- other, within the fleet's budget of REQUESTS per WINDOW seconds; "sections":
-- COUNT calls of sections(). Prints "ready", waits for GO_FILE when given,
-- then "ok N" (N calls succeeded) or the first failure ("err KIND MESSAGE").
-- Warnings (Redis down) go to stderr.
local fleet = require "avalara.fleet"
local socket = require "socket"

local mode, url, port, pwfile, prefix, rate, count, go = arg[1], arg[2], arg[3], arg[4], arg[5], arg[6], arg[7],
  arg[8]
local f = assert(io.open(pwfile))
local password = f:read("*l")
f:close()

local client = fleet.new { environment = "local", emulator_url = url, account_id = "2000000001",
  license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001, timeout = 10,
  redis = { port = tonumber(port), password = password, prefix = prefix },
  rate = mode == "classify" and { requests = tonumber(rate:match("^%d+")), window = tonumber(rate:match("/(.+)$")),
    max_wait = 60 } or nil }

io.stdout:write("ready\n")
io.stdout:flush()
if go then
  local deadline = socket.gettime() + 30
  while not io.open(go) and socket.gettime() < deadline do socket.sleep(0.002) end
end

local pid = tostring(io.open("/proc/self/stat"):read("*n"))
for i = 1, tonumber(count) do
  local ok, err
  if mode == "classify" then
    ok, err = client:classify({ itemCode = "F-" .. pid .. "-" .. i, description = "men's cotton t-shirt" },
      { country = "US" })
  else
    ok, err = client:sections()
  end
  if not ok then
    io.stdout:write("err ", tostring(err.kind), " ", tostring(err.message), "\n")
    os.exit(1)
  end
end
io.stdout:write("ok ", count, "\n")
