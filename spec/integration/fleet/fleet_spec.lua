-- A fleet on a real redis-server (password-protected, started here on a
-- loopback port, stopped by pid): 3 nginx hosts of 4 workers each and 2
-- plain-Lua processes share one token, one rate budget and one
-- classification cache.
--
-- - cold start, 500 concurrent requests in all (3 x 150 at once through
--   curl, and 2 x 25 from the processes): exactly 1 token request, and the
--   emulator never sees more than the budget + 10 % in one of its windows;
-- - a classification made on one host is answered by the cache on another;
-- - Redis killed (SIGKILL) mid-run, and every token expired meanwhile:
--   every request still succeeds (each host renews on its own, a new process
--   fetches its own token, each says once that Redis cannot be reached), and
--   the fleet renews with one token request again once Redis is back;
-- - a wrong password fails every request with the store's error (kind "store", code "auth"), on
--   cosockets, without fetching a token and without the breaker's warning;
-- - no secret (license key, Redis password, access token) in any log or output.
local emu = require "spec.support.emulator"
local nginx = require "spec.support.nginx"
local redis = require "spec.support.redis"
local H = require "spec.support.partner"
local socket = require "socket"

local PASSWORD, WRONG = "fleet-redis-pw-93b1e7", "wrong-redis-pw-4c27d0"
-- The fleet's budget: RATE requests per WINDOW seconds. Two seconds rather than one halve the share
-- of the hosts' wake-up jitter (tens of ms on a loaded 2-core machine) in what the emulator counts.
local RATE, WINDOW = 200, 2
local HOSTS, WORKERS, PER_HOST, PROCESSES, PER_PROCESS = 3, 4, 150, 2, 25

local CONF = [[
{{PREAMBLE}}
worker_processes {{WORKERS}};
events { worker_connections 1024; }
http {
    {{HTTP_BASICS}}
    lua_shared_dict avalara_tokens 1m;

    init_by_lua_block {
        local fleet = require "avalara.fleet"
        local function make(redis, extra)
            local o = { environment = "local", emulator_url = "{{HTTP}}", account_id = "2000000001",
                license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001, shared_dict = "avalara_tokens",
                timeout = 10, redis = { port = {{REDIS_PORT}}, password = redis, prefix = "{{PREFIX}}" } }
            for k, v in pairs(extra or {}) do o[k] = v end
            return fleet.new(o)
        end
        rated = make("{{PASSWORD}}", { rate = { requests = {{RATE}}, window = {{WINDOW}}, max_wait = 60 } })
        cached = make("{{PASSWORD}}", { cache = { ttl = 600 } })
        wrong = make("{{WRONG}}")
    }

    server {
        listen 127.0.0.1:{{PORT}};
        default_type text/plain;
        location = /classify {
            content_by_lua_block {
                local m, err = rated:classify({ itemCode = ngx.var.arg_code, description = "men's cotton t-shirt" },
                    { country = "US" })
                if not m then ngx.status = 502; return ngx.say(err.kind, " ", err.message) end
                ngx.say(m.status)
            }
        }
        location = /cached {
            content_by_lua_block {
                local m, err = cached:classify({ itemCode = ngx.var.arg_code,
                    description = ngx.unescape_uri(ngx.var.arg_desc) }, { country = "US" })
                if m then m, err = cached:wait(m, { timeout = 20, interval = 0.05 }) end
                if not m then ngx.status = 502; return ngx.say(err.kind, " ", err.message) end
                ngx.say(m.status, " ", m.hsCode)
            }
        }
        location = /sections {
            content_by_lua_block {
                local client = ngx.var.arg_client == "wrong" and wrong or cached
                local s, err = client:sections()
                if not s then ngx.status = 502; return ngx.say(err.kind, " ", err.message) end
                ngx.say(#s)
            }
        }
    }
}
]]

-- Runs curl jobs at once, each {host, paths, parallel (max at once) or rate ("25/s", one at a time)};
-- touches `go` when they have started; returns each job's statuses ({["200"] = n, ...}).
local function curl(jobs, go, background)
  local cmds, outs = {}, {}
  for i, job in ipairs(jobs) do
    local cfg, out = os.tmpname(), os.tmpname()
    local f = assert(io.open(cfg, "w"))
    for _, path in ipairs(job.paths) do f:write(('url = "%s%s"\noutput = "/dev/null"\n'):format(job.host.url, path)) end
    f:close()
    local mode = job.rate and ("--rate " .. job.rate) or ("--parallel --parallel-immediate --parallel-max " .. job.parallel)
    cmds[i] = ("curl -s --no-progress-meter --max-time 60 %s -w '%%{http_code}\\n' --config %s >%s 2>/dev/null")
      :format(mode, cfg, out)
    outs[i] = { cfg = cfg, out = out }
  end
  local done = os.tmpname()
  os.remove(done)
  local script = table.concat(cmds, " & ") .. " & " .. (go and ("touch " .. go .. "; ") or "") .. "wait; touch " .. done
  os.execute("(" .. script .. ") >/dev/null 2>&1 " .. (background and "&" or ""))
  local function collect()
    local deadline = socket.gettime() + 120
    while not io.open(done) and socket.gettime() < deadline do socket.sleep(0.05) end
    os.remove(done)
    local results = {}
    for i, o in ipairs(outs) do
      local statuses = {}
      for line in io.lines(o.out) do statuses[line] = (statuses[line] or 0) + 1 end
      os.remove(o.cfg)
      os.remove(o.out)
      results[i] = statuses
    end
    return results
  end
  if background then return collect end
  return collect()
end

describe("a fleet on Redis", function()
  local e, r, dir, pwfile, hosts = nil, nil, nil, nil, {}
  local prefix = ("fleet%d:"):format(os.time())

  setup(function()
    e = emu.start { workers = 2 }
    r = redis.start { password = PASSWORD }
    dir = H.tmpdir()
    pwfile = dir .. "/redis-password"
    local f = assert(io.open(pwfile, "w"))
    f:write(PASSWORD, "\n")
    f:close()
    for i = 1, HOSTS do
      hosts[i] = nginx.start(CONF, { WORKERS = WORKERS, HTTP = e.http_url, REDIS_PORT = r.port, PASSWORD = PASSWORD,
        WRONG = WRONG, PREFIX = prefix, RATE = RATE, WINDOW = WINDOW })
    end
  end)

  teardown(function()
    for _, n in ipairs(hosts) do n:stop() end
    if r then r:stop() end
    if e then e:stop() end
    if dir then H.rmdir(dir) end
  end)

  local function tokens()
    return ((e:counters().grants.connect_token or {}).client_credentials or 0)
  end

  local function routes()
    return e:counters().routes
  end

  local function spawn(mode, count, go)
    return H.spawn({ mode, e.http_url, r.port, pwfile, prefix, RATE .. "/" .. WINDOW, count, go },
      "spec/support/fleet_child.lua")
  end

  local function logs()
    local all = {}
    for i, n in ipairs(hosts) do all[i] = n:log() end
    return table.concat(all, "\n")
  end

  -- The access token the fleet shares (from Redis), for the secret checks.
  local function shared_token()
    local key = r:cli("--scan", "--pattern", prefix .. "avalara:token:*"):match("[^\n\"]+")
    local value = key and r:cli("GET", key) or ""
    return value:match('access_token\\?":\\?"([^"\\]+)')
  end

  it("cold start, 500 concurrent requests: exactly 1 token request, the rate budget held within 10 %", function()
    e:reset()
    local go = dir .. "/go"
    os.remove(go)
    local children = {}
    for i = 1, PROCESSES do children[i] = spawn("classify", PER_PROCESS, go) end
    for _, c in ipairs(children) do -- each has made its client and waits for the go file
      local deadline = socket.gettime() + 10
      while not emu.read_file(c.out):find("ready") and socket.gettime() < deadline do socket.sleep(0.02) end
    end
    local jobs = {}
    for i, host in ipairs(hosts) do
      local paths = {}
      for j = 1, PER_HOST do paths[j] = ("/classify?code=H%d-%d"):format(i, j) end
      jobs[i] = { host = host, paths = paths, parallel = PER_HOST }
    end
    local t0 = socket.gettime()
    local results = curl(jobs, go)
    H.wait(children, 60)
    local took = socket.gettime() - t0
    for i, statuses in ipairs(results) do
      assert.same({ ["200"] = PER_HOST }, statuses, "host " .. i .. ":\n" .. hosts[i]:log())
    end
    for _, c in ipairs(children) do assert.equal("ready\nok " .. PER_PROCESS .. "\n", c.output) end

    local total = HOSTS * PER_HOST + PROCESSES * PER_PROCESS
    assert.equal(1, tokens())
    assert.equal(total, routes().classification_create)

    -- The emulator's own log: when each classification create arrived (ms). The budget is checked
    -- the way a server counts a limit, in fixed windows of its clock (0-2 s, 2-4 s, ...); the most
    -- in any sliding window is printed (it adds the jitter of the hosts' wake-ups).
    local arrivals, fixed = {}, {}
    for line in io.lines(e.ca_file:match("^(.*)/") .. "/access.log") do
      local msec, took_s = line:match("\"POST /api/v2/companies/1001/classifications/hs .* ([%d.]+) ([%d.]+)$")
      if msec then
        local at = tonumber(msec) - tonumber(took_s)
        arrivals[#arrivals + 1] = at
        local w = math.floor(at / WINDOW)
        fixed[w] = (fixed[w] or 0) + 1
      end
    end
    table.sort(arrivals)
    assert.equal(total, #arrivals)
    local max_fixed, max_sliding, first = 0, 0, 1
    for _, n in pairs(fixed) do max_fixed = math.max(max_fixed, n) end
    for last = 1, #arrivals do
      while arrivals[last] - arrivals[first] >= WINDOW do first = first + 1 end
      max_sliding = math.max(max_sliding, last - first + 1)
    end
    local span = arrivals[#arrivals] - arrivals[1]
    print(("\n  fleet: %d requests in %.2f s, %.1f a second at the emulator, 1 token request; at most %d in "
      .. "a %g s window of the emulator's clock, %d in any sliding one (budget %d per %g s)")
      :format(total, took, (total - 1) / span, max_fixed, WINDOW, max_sliding, RATE, WINDOW))
    assert.is_true(max_fixed <= RATE * 1.1, "at most " .. RATE * 1.1 .. " in a window, saw " .. max_fixed)
    -- and the budget did hold them back: beyond the first window's RATE, RATE per WINDOW at most
    assert.is_true(span >= (total - RATE) / RATE * WINDOW, ("they arrived within %.2f s"):format(span))
    H.no_secret({ PASSWORD, "DEMO-LICENSE-KEY-0001", shared_token() }, logs(), children[1].output,
      children[2].output)
  end)

  it("answers on the second host from the cache for an item classified on the first", function()
    local before = routes()
    local status, body = hosts[1]:get("/cached?code=CACHE-1&desc=men%27s%20cotton%20t-shirt")
    assert.equal(200, status, body)
    assert.matches("^CLASSIFIED %d+", body)
    local after_first = routes()
    assert.equal((before.classification_create or 0) + 1, after_first.classification_create)
    local status2, body2 = hosts[2]:get("/cached?code=CACHE-1&desc=men%27s%20cotton%20t-shirt")
    assert.equal(200, status2)
    assert.equal(body, body2)
    local after_second = routes()
    assert.equal(after_first.classification_create, after_second.classification_create) -- no new create
    assert.equal(after_first.classification_get, after_second.classification_get)       -- nor a read
    -- the same item code with another description is classified again
    local status3, body3 = hosts[3]:get("/cached?code=CACHE-1&desc=porcelain%20coffee%20mug")
    assert.equal(200, status3, body3)
    assert.equal(after_second.classification_create + 1, routes().classification_create)
  end)

  it("Redis killed mid-run: every request still succeeds on local tokens, and the fleet shares one again after",
    function()
      local before = tokens()
      local jobs = {}
      for i, host in ipairs(hosts) do
        local paths = {}
        for j = 1, 60 do paths[j] = ("/classify?code=K%d-%d"):format(i, j) end
        jobs[i] = { host = host, paths = paths, rate = "25/s" } -- 2.4 s, one after the other
      end
      local collect = curl(jobs, nil, true)
      socket.sleep(0.6)
      r:kill()
      -- every token dies while Redis is down: each host renews on its own (one request per host,
      -- under its shared dict's lock), and a process that starts now gets a token of its own
      e:request("POST", "/_emulator/tokens/expire")
      local child = H.wait({ spawn("sections", 3) }, 30)[1]
      socket.sleep(0.4)
      r:restart()
      local results = collect()
      for i, statuses in ipairs(results) do
        assert.same({ ["200"] = 60 }, statuses, "host " .. i .. ":\n" .. hosts[i]:log())
      end
      assert.matches("avalara: warning: redis 127.0.0.1:" .. r.port .. "/0 cannot be reached %(cannot connect: "
        .. "connection refused%): carrying on with local state", child.output)
      assert.matches("ok 3\n$", child.output)
      assert.equal(before + HOSTS + 1, tokens())
      -- Redis is back (empty): after 1 s the hosts use it again; the tokens die once more and the
      -- whole fleet renews with one request, stored in Redis
      socket.sleep(1.1)
      e:request("POST", "/_emulator/tokens/expire")
      for i, host in ipairs(hosts) do
        for j = 1, 8 do assert.equal(200, (host:get(("/classify?code=R%d-%d"):format(i, j)))) end
      end
      assert.equal(before + HOSTS + 2, tokens())
      assert.is_string(shared_token())
      local log = logs()
      assert.matches("cannot be reached %(.-%): carrying on with local state", log)
      assert.matches("answers again: fleet state is shared again", log)
      H.no_secret({ PASSWORD, "DEMO-LICENSE-KEY-0001", shared_token() }, log, child.output)
    end)

  it("a wrong password: every request fails with the store's error, no token is fetched, no warning", function()
    local before = tokens()
    for _, host in ipairs(hosts) do
      for _ = 1, 2 do
        local status, body = host:get("/sections?client=wrong")
        assert.equal(502, status)
        assert.equal("store redis 127.0.0.1:" .. r.port .. "/0: authentication failed (WRONGPASS invalid "
          .. "username-password pair or user is disabled.)\n", body)
        H.no_secret({ PASSWORD, WRONG, "DEMO-LICENSE-KEY-0001" }, body)
      end
    end
    assert.equal(before, tokens())
    local log = logs()
    assert.not_matches("cannot be reached %(authentication failed", log)
    H.no_secret({ PASSWORD, WRONG, "DEMO-LICENSE-KEY-0001" }, log)
  end)
end)
