-- A fleet of 3 nginx hosts (2 workers each) on Redis Sentinel (spec/support/sentinel.lua: a
-- master, a replica, three sentinels), under a steady load from curl while the master fails over:
-- a forced `SENTINEL FAILOVER`, then the master killed with `kill -9`. Every request succeeds, the
-- failover makes no token request, and when every token dies after it the fleet makes one.
local emu = require "spec.support.emulator"
local nginx = require "spec.support.nginx"
local sentinel = require "spec.support.sentinel"
local H = require "spec.support.partner"
local socket = require "socket"

local PASSWORD, SENTINEL_PASSWORD = "master-pw-0e5b8a14", "sentinel-pw-c3f9d27e"
local HOSTS, PER_HOST, RATE = 3, 100, "25/s" -- 4 s of load per host

local CONF = [[
{{PREAMBLE}}
worker_processes 2;
events { worker_connections 256; }
http {
    {{HTTP_BASICS}}
    lua_shared_dict avalara_tokens 1m;
    init_by_lua_block {
        client = require("avalara.fleet").new { environment = "local", emulator_url = "{{HTTP}}",
            account_id = "2000000001", license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001,
            shared_dict = "avalara_tokens", timeout = 10,
            redis = { sentinels = { {{SENTINELS}} }, master = "{{NAME}}", sentinel_password = "{{SENTINEL_PASSWORD}}",
                password = "{{PASSWORD}}", prefix = "{{PREFIX}}" } }
    }
    server {
        listen 127.0.0.1:{{PORT}};
        default_type text/plain;
        location = /sections {
            content_by_lua_block {
                local s, err = client:sections()
                if not s then ngx.status = 502; return ngx.say(err.kind, " ", err.message) end
                ngx.say(#s)
            }
        }
    }
}
]]

local t, e, hosts = nil, nil, {}

setup(function()
  t = sentinel.start { password = PASSWORD, sentinel_password = SENTINEL_PASSWORD }
  e = emu.start { workers = 2 }
  local quoted, prefix = {}, ("sn%d:"):format(os.time()) -- one prefix: one fleet
  for i, a in ipairs(t:addresses()) do quoted[i] = '"' .. a .. '"' end
  for i = 1, HOSTS do
    hosts[i] = nginx.start(CONF, { HTTP = e.http_url, SENTINELS = table.concat(quoted, ", "), NAME = t.name,
      SENTINEL_PASSWORD = SENTINEL_PASSWORD, PASSWORD = PASSWORD, PREFIX = prefix })
  end
end)
teardown(function()
  for _, n in ipairs(hosts) do n:stop() end
  if e then e:stop() end
  if t then t:stop() end
end)

local function tokens()
  return ((e:counters().grants.connect_token or {}).client_credentials or 0)
end

-- Starts PER_HOST requests per host at RATE (curl, in the background); returns a function that
-- waits for them and returns every status seen ({["200"] = n, ...}).
local function load()
  local outs, cmds = {}, {}
  for i, host in ipairs(hosts) do
    local cfg, out = os.tmpname(), os.tmpname()
    local f = assert(io.open(cfg, "w"))
    for _ = 1, PER_HOST do f:write(('url = "%s/sections"\noutput = "/dev/null"\n'):format(host.url)) end
    f:close()
    cmds[i] = ("curl -s --max-time 30 --rate %s -w '%%{http_code}\\n' --config %s >%s 2>/dev/null"):format(RATE, cfg, out)
    outs[i] = { cfg = cfg, out = out }
  end
  local done = os.tmpname()
  os.remove(done)
  os.execute("(" .. table.concat(cmds, " & ") .. " & wait; touch " .. done .. ") >/dev/null 2>&1 &")
  return function()
    local deadline = socket.gettime() + 60
    while not io.open(done) and socket.gettime() < deadline do socket.sleep(0.05) end
    os.remove(done)
    local statuses = {}
    for _, o in ipairs(outs) do
      for line in io.lines(o.out) do statuses[line] = (statuses[line] or 0) + 1 end
      os.remove(o.cfg)
      os.remove(o.out)
    end
    return statuses
  end
end

-- The load across `trigger()` (a failover, until the sentinels name the new master); 1.5 s
-- later every token dies at the emulator. Checks every request succeeded: 1 token request before,
-- 0 during the failover, 1 after the tokens died.
local function across(what, trigger)
  e:reset()
  for _, n in ipairs(hosts) do assert.equal(200, (n:get("/sections"))) end -- warm: the fleet's token
  local first = tokens()
  local wait = load()
  socket.sleep(0.5)
  local t0 = socket.gettime()
  trigger()
  local took = socket.gettime() - t0
  socket.sleep(1.5) -- every worker follows the new master (its recheck: 1 s; its breaker: 1 s)
  local during = tokens() - first
  e:request("POST", "/_emulator/tokens/expire")
  local statuses = wait()
  local logs = {}
  for i, n in ipairs(hosts) do logs[i] = n:log() end
  assert.same({ ["200"] = HOSTS * PER_HOST }, statuses, table.concat(logs, "\n"):sub(-3000))
  assert.same({ 1, 0, 1 }, { first, during, tokens() - first - during }, table.concat(logs, "\n"):sub(-3000))
  H.no_secret({ PASSWORD, SENTINEL_PASSWORD, "DEMO-LICENSE-KEY-0001" }, table.concat(logs, "\n"))
  print(("\n  %d nginx hosts on sentinel, %s: %d requests at %s per host, all 200 (%.2f s until every sentinel"
    .. " named the new master); token requests: 1 before, 0 during, 1 after the tokens died")
    :format(HOSTS, what, HOSTS * PER_HOST, RATE, took))
end

describe("3 nginx hosts on Sentinel", function()
  it("across SENTINEL FAILOVER: every request succeeds, one token request after", function()
    across("SENTINEL FAILOVER", function() t:failover() end)
  end)

  it("across the master killed (kill -9): every request succeeds, one token request once it answers", function()
    t:settle()
    across("master killed", function()
      local old = t:master_port()
      t:server(old):kill()
      local deadline = socket.gettime() + 20
      while t:master_port() == old and socket.gettime() < deadline do socket.sleep(0.05) end
    end)
  end)
end)
