-- A separate process for spec/integration/partner/concurrency_spec.lua: one partner on the
-- emulator with the file store (or a Redis store, for spec/integration/fleet), calling the API through a connection.
--
--   lua spec/support/partner_child.lua MODE EMULATOR_URL STORE_PATH CONNECTION_ID [GO_FILE]
--
-- MODE: "call" (one API call; prints "ok N" or "err CODE MESSAGE"), or
-- "kill-after-refresh" / "kill-after-store": the same call, but the process
-- kills itself with SIGKILL from the on_refresh hook right after the refresh
-- answer came in (before the store write), or right after the write (before
-- the lock is released). With GO_FILE it waits for that file to exist
-- first, so that several children start together. (And the store modes below.)
local avalara = require "avalara"
local socket = require "socket"

local mode, url, path, id, go = arg[1], arg[2], arg[3], arg[4], arg[5]

-- A store path "redis://127.0.0.1:PORT/PREFIX" is a Redis store (spec/integration/fleet), else a file.
local function open_store(where)
  local port, prefix = where:match("^redis://127%.0%.0%.1:(%d+)/(.*)$")
  if port then return avalara.store.redis { port = tonumber(port), prefix = prefix } end
  return avalara.store.file(where)
end

-- Store modes: "increment PATH N" adds 1 to a counter N times, each under the
-- lock, read then written with cas; "cas-increment PATH N" the same with cas
-- retries only; "hold-lock PATH KEY" takes a lock, says "locked" and sleeps.
if mode == "increment" or mode == "cas-increment" or mode == "hold-lock" then
  local store = open_store(url)
  if mode == "hold-lock" then
    assert(store:lock(path, 600))
    io.stdout:write("locked\n")
    io.stdout:flush()
    socket.sleep(600)
    return
  end
  for _ = 1, tonumber(path) do
    local unlock
    if mode == "increment" then
      unlock = store:lock("counter")
      while not unlock do
        socket.sleep(0.001)
        unlock = store:lock("counter")
      end
    end
    repeat
      local v, version = store:get("n")
      local ok = store:cas("n", version, { n = (v and v.n or 0) + 1 })
    until ok
    if unlock then unlock() end
  end
  io.stdout:write("done\n")
  return
end

local kill_at = ({ ["kill-after-refresh"] = "refreshed", ["kill-after-store"] = "stored" })[mode]
local p = avalara.partner.new {
  client_id = "demo-partner", client_secret = "demo-partner-secret", environment = "local", emulator_url = url,
  store = open_store(path), timeout = 10,
  on_refresh = function(info)
    io.stdout:write(info.stage, "\n")
    io.stdout:flush()
    if info.stage == kill_at then os.execute("kill -KILL $PPID") end -- the shell's parent: this process
  end,
}

if go then
  local deadline = socket.gettime() + 20
  while not io.open(go) and socket.gettime() < deadline do socket.sleep(0.002) end
end

local client = assert(p:client(id))
local records, err = client:sections()
if records then
  io.stdout:write("ok ", #records, "\n")
else
  io.stdout:write("err ", tostring(err.code), " ", tostring(err.message), "\n")
end
