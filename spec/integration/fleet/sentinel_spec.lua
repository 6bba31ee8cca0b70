-- The Redis store through Redis Sentinel (avalara.redis.sentinel), on real servers started here
-- (spec/support/sentinel.lua: a master, a replica, three sentinels with their own password):
-- the stores' contract; the options checked before any traffic; a wrong sentinel password, an
-- unknown master name and no sentinel up as clear errors; the latency of an operation; a forced
-- `SENTINEL FAILOVER` while a loop of store operations runs (the store follows the new master);
-- and two plain-Lua fleet processes sharing one token across a failover.
local avalara = require "avalara"
local emu = require "spec.support.emulator"
local sentinel = require "spec.support.sentinel"
local contract = require "spec.support.store_contract"
local H = require "spec.support.partner"
local nginx = require "spec.support.nginx"
local socket = require "socket"
local B = { describe = describe, it = it, before_each = before_each }

local PASSWORD, SENTINEL_PASSWORD = "master-pw-9c1e77d2", "sentinel-pw-4b20aa3f"
local WATCHER_PASSWORD = "watcher-pw-61d0c3e5" -- an ACL user of the sentinels

-- One nginx worker with a Sentinel store made in init_by_lua (its commands go over cosockets).
local CONF = [[
{{PREAMBLE}}
worker_processes 1;
events { worker_connections 64; }
http {
    {{HTTP_BASICS}}
    init_by_lua_block {
        store = require("avalara.store").redis { sentinels = { {{SENTINELS}} }, master = "{{NAME}}",
            sentinel_password = "{{SENTINEL_PASSWORD}}", password = "{{PASSWORD}}", prefix = "nginx:" }
    }
    server {
        listen 127.0.0.1:{{PORT}};
        location = /op {
            content_by_lua_block {
                local ok, err = store:set("k", { v = ngx.var.arg_v })
                if not ok then return ngx.say(err.code, " ", err.message) end
                ngx.say(store:get("k").v, " ", tostring(store))
            }
        }
    }
}
]]

local t
local seq = 0
local function prefix()
  seq = seq + 1
  return ("sentinel%d:%d:"):format(os.time(), seq)
end

local function store(extra)
  local o = { sentinels = t:addresses(), master = t.name, sentinel_password = SENTINEL_PASSWORD,
    password = PASSWORD, prefix = prefix() }
  for k, v in pairs(extra or {}) do o[k] = v end
  return avalara.store.redis(o)
end

setup(function()
  t = sentinel.start { password = PASSWORD, sentinel_password = SENTINEL_PASSWORD,
    sentinel_user = { "watcher", WATCHER_PASSWORD } }
end)
teardown(function()
  if t then t:stop() end
end)

contract("redis through sentinel", function() return store() end, B)

describe("a Sentinel store", function()
  it("checks its options before any traffic, naming the option", function()
    local function raises(o, pattern)
      local ok, err = pcall(avalara.store.redis, o)
      assert.is_false(ok)
      assert.matches(pattern, err)
    end
    raises({ sentinels = {}, master = "m" }, "'sentinels' must be a non%-empty list")
    raises({ sentinels = { "127.0.0.1:1" } }, "'master'")
    raises({ sentinels = { "127.0.0.1:1" }, master = "m", host = "h" }, "'host' and 'port' are the sentinels'")
    raises({ sentinels = { { host = "", port = 1 } }, master = "m" }, "'sentinels%[1%]'")
    raises({ sentinels = { "h:99999" }, master = "m" }, "'sentinels%[1%]'")
    raises({ sentinels = { "h:1" }, master = "m", db = -1 }, "'db'")
    raises({ sentinels = { "h:1" }, master = "m", nonsense = 1 }, "unknown option 'nonsense'")
    -- "host:port", {host, port} and a bare host (port 26379) are all accepted
    assert.is_table(avalara.store.redis { sentinels = { "a:1", { host = "b", port = 2 }, "c" }, master = "m" })
  end)

  it("says what is wrong: a wrong sentinel password, an unknown name, no sentinel up (never a password)", function()
    local s = store { sentinel_password = "wrong-sentinel-pw" }
    local _, _, err = s:get("k")
    assert.equal("auth", err.code)
    assert.matches("authentication failed", err.message)
    H.no_secret({ PASSWORD, "wrong-sentinel-pw" }, tostring(err), err.message)

    _, _, err = store { master = "nosuchname" }:get("k")
    assert.equal("config", err.code)
    assert.matches("no sentinel knows a master named 'nosuchname'", err.message)

    _, _, err = store { sentinels = { "127.0.0.1:" .. emu.free_port(), "127.0.0.1:" .. emu.free_port() } }:get("k")
    assert.equal("unreachable", err.code)
    assert.is_true(err.retryable)

    _, _, err = store { password = "wrong-master-pw" }:get("k")
    assert.equal("auth", err.code)
    H.no_secret({ "wrong-master-pw", SENTINEL_PASSWORD }, tostring(err), err.message)
  end)

  it("authenticates to the sentinels as an ACL user", function()
    local s = store { sentinel_username = "watcher", sentinel_password = WATCHER_PASSWORD }
    assert.is_true((s:set("k", { v = "via an ACL user" })))
    assert.equal("via an ACL user", s:get("k").v)
    local _, _, err = store { sentinel_username = "watcher", sentinel_password = "not-the-watcher-pw" }:get("k")
    assert.equal("auth", err.code)
    H.no_secret({ "not-the-watcher-pw", WATCHER_PASSWORD }, tostring(err))
  end)

  it("finds the master from the second sentinel when the first is down, and names it", function()
    local list = t:addresses()
    table.insert(list, 1, "127.0.0.1:" .. emu.free_port())
    local s = store { sentinels = list }
    assert.is_true((s:set("k", { v = 1 })))
    assert.equal(1, s:get("k").v)
    assert.matches("sentinel master fleet %(127%.0%.0%.1:" .. t:master_port() .. "%)", tostring(s))
  end)

  it("costs what a direct store costs once the master is known (latency measured)", function()
    local s, direct = store(), avalara.store.redis { port = t:master_port(), password = PASSWORD, prefix = prefix() }
    local function time(st)
      st:set("warm", { v = 0 })
      local t0 = socket.gettime()
      for i = 1, 400 do
        st:set("k" .. i % 10, { v = i })
        st:get("k" .. i % 10)
      end
      return (socket.gettime() - t0) / 800 * 1e6
    end
    local first0 = socket.gettime()
    store():get("cold") -- a new store: asks a sentinel, checks ROLE, connects
    local cold = (socket.gettime() - first0) * 1e3
    local via, plain = time(s), time(direct)
    print(("\n  sentinel store: %.0f us an operation (direct to the master: %.0f us); first operation %.1f ms")
      :format(via, plain, cold))
    assert.is_true(via < plain * 2 + 200, "an operation through sentinel costs about what a direct one does")
  end)
end)

-- Runs set, get and lock on `s` in a loop (from a failover started outside) until the store has
-- left the master on port `old` and 200 loops succeeded there; no failure after that. Returns
-- {ops, errors (calls that failed: codes "unreachable 12, ..."), first/last error, lost (writes
-- acknowledged and then lost: they went to the old master after the replica's promotion), stale
-- (reads that found an older value than the write just before),
-- named (when the sentinels named the new master), switched (when the store used it), took},
-- times in seconds from the start.
local function under_load(s, old)
  local r = { ops = 0, errors = 0, lost = 0, stale = 0, after = 0 }
  local codes, t0, asked, last_version = {}, socket.gettime(), 0, 0
  local deadline = t0 + 30
  while socket.gettime() < deadline do
    if not r.named and socket.gettime() - asked > 0.05 then -- when the sentinels name the new master
      asked = socket.gettime()
      local ok, port = pcall(t.master_port, t)
      if ok and port ~= old then r.named = asked - t0 end
    end
    r.ops = r.ops + 1
    local i = r.ops
    local ok, err = s:set("n", { i = i })
    if ok then
      -- the version counter: a version at or below the last one acknowledged means the writes
      -- since went to the old master after the replica's promotion (lost)
      if err <= last_version then r.lost = r.lost + last_version - err + 1 end
      last_version = err
    end
    local got, _, gerr
    if ok then got, _, gerr = s:get("n") end
    local unlock, lerr
    if ok and not gerr then unlock, lerr = s:lock("l" .. i, 5) end
    local e = (not ok and err) or gerr or lerr
    if e or not unlock then
      codes[e and e.code or "lock held"] = (codes[e and e.code or "lock held"] or 0) + 1
      r.errors = r.errors + 1
      r.first, r.last = r.first or socket.gettime() - t0, socket.gettime() - t0
      if r.switched and e and os.getenv("SENTINEL_DEBUG") then
        local a = {}
        for j = 1, 3 do local x = t:ask(j, "SENTINEL", "get-master-addr-by-name", t.name); a[j] = x and x[2] or "?" end
        print("DEBUG", socket.gettime() - t0, r.switched, tostring(s), e.message, table.concat(a, ","))
      end
      assert.is_nil(r.switched and e, "a failure after the store followed: " .. tostring(e))
    else
      unlock()
      if got.i ~= i then r.stale = r.stale + 1 end -- set on the old master, get on the new one
      local now = tonumber(tostring(s):match("%(127%.0%.0%.1:(%d+)%)")) -- (none: unlock failed, asking again)
      if not r.switched and now and now ~= old then
        r.switched = socket.gettime() - t0
      end
      if r.switched then r.after = r.after + 1 end
      if r.after >= 200 then break end
    end
  end
  r.took = socket.gettime() - t0
  local list = {}
  for code, n in pairs(codes) do list[#list + 1] = code .. " " .. n end
  r.codes = table.concat(list, ", ")
  assert.equal(200, r.after, "the store did not follow the new master")
  local wait = socket.gettime() + 10 -- until the sentinel asked names it too (the leader said so first)
  while t:master_port() == old and socket.gettime() < wait do socket.sleep(0.05) end
  r.named = r.named or socket.gettime() - t0
  assert.matches("127%.0%.0%.1:" .. t:master_port() .. "%)", tostring(s))
  return r
end

local function report(what, r)
  print(("\n  sentinel, %s: %d loops (set, get, lock) in %.2f s; %d failed (%s) between %.2f s and"
    .. " %.2f s; %d writes lost, %d stale reads; the sentinels named the new master at %.2f s, the store used it from %.2f s;"
    .. " 200 loops after it, none failed"):format(what, r.ops, r.took, r.errors, r.codes, r.first or 0, r.last or 0,
    r.lost, r.stale, r.named or -1, r.switched))
end

describe("a failover under load", function()
  it("SENTINEL FAILOVER: the store follows the new master within its recheck, so does nginx's worker", function()
    local s = store()
    assert(s:set("n", { i = 0 }))
    local old = t:master_port()
    local quoted = {}
    for i, a in ipairs(t:addresses()) do quoted[i] = '"' .. a .. '"' end
    local n = nginx.start(CONF, { SENTINELS = table.concat(quoted, ", "), NAME = t.name, PASSWORD = PASSWORD,
      SENTINEL_PASSWORD = SENTINEL_PASSWORD })
    finally(function() n:stop() end)
    local status, body = n:get("/op?v=before")
    assert.equal(200, status)
    assert.equal("before avalara.store.redis(sentinel master fleet (127.0.0.1:" .. old .. "), prefix nginx:)\n",
      body)
    -- the failover is forced from another process, 0.3 s into the loop
    os.execute(("(sleep 0.3; REDISCLI_AUTH=%s redis-cli -p %d SENTINEL FAILOVER %s) >/dev/null 2>&1 &")
      :format(emu.shell_quote(SENTINEL_PASSWORD), t.sentinels[2].port, t.name))
    local r = under_load(s, old)
    report("SENTINEL FAILOVER", r)
    assert.equal(0, r.errors) -- every call succeeded (the writes on the old master meanwhile are lost)
    -- it follows within its recheck (1 s) of the sentinels' switch (the old master answers as
    -- one for about 10 s more: without the recheck, it would have stayed there)
    assert.is_true(r.switched - r.named < 1.5, ("the sentinels switched at %.2f s, the store at %.2f s")
      :format(r.named, r.switched))
    status, body = n:get("/op?v=after") -- nginx's worker follows too (more than its recheck later)
    assert.equal(200, status)
    assert.equal("after avalara.store.redis(sentinel master fleet (127.0.0.1:" .. t:master_port()
      .. "), prefix nginx:)\n", body, n:log())
  end)
end)

describe("a fleet on Sentinel", function()
  local e, dir
  setup(function()
    e = emu.start { workers = 2 }
    dir = H.tmpdir()
  end)
  teardown(function()
    if e then e:stop() end
    if dir then H.rmdir(dir) end
  end)

  local function tokens()
    return ((e:counters().grants.connect_token or {}).client_credentials or 0)
  end

  -- Runs 2 fleet processes (a sections() call every 20 ms each) on one token: `trigger()` runs the
  -- failover (until the sentinels name the new master); 1.5 s later every token dies at the emulator, and the processes stop 1 s after.
  -- Checks no call failed, 1 token request before the failover, 0 during it, 1 after the tokens
  -- died; returns the number of calls.
  local function fleet_across(trigger)
    e:reset()
    local secrets, stop, pfx = dir .. "/secrets", dir .. "/stop", prefix()
    os.remove(stop)
    local f = assert(io.open(secrets, "w"))
    f:write(PASSWORD, "\n", SENTINEL_PASSWORD, "\n")
    f:close()
    local children = {}
    for i = 1, 2 do
      children[i] = H.spawn({ e.http_url, table.concat(t:addresses(), ","), t.name, secrets, pfx, stop },
        "spec/support/sentinel_child.lua")
    end
    for _, c in ipairs(children) do
      local deadline = socket.gettime() + 10
      while not emu.read_file(c.out):find("ready") and socket.gettime() < deadline do socket.sleep(0.02) end
    end
    socket.sleep(0.5)
    local first = tokens()
    trigger()
    socket.sleep(1.5) -- the processes follow the new master (their recheck: 1 s)
    local during = tokens() - first
    e:request("POST", "/_emulator/tokens/expire") -- every token dies: the fleet fetches one, on the new master
    socket.sleep(1)
    io.open(stop, "w"):close()
    H.wait(children, 30)
    local calls = 0
    for i, c in ipairs(children) do
      local ok, failed = c.output:match("ok (%d+) failed (%d+)")
      assert.equal("0", failed, "process " .. i .. ":\n" .. c.output)
      calls = calls + tonumber(ok)
    end
    assert.same({ 1, 0, 1 }, { first, during, tokens() - first - during })
    H.no_secret({ PASSWORD, SENTINEL_PASSWORD }, children[1].output, children[2].output)
    return calls
  end

  it("2 plain-Lua processes across SENTINEL FAILOVER: no failed call, one token request, one after they die",
    function()
      t:settle() -- the failover before has demoted the old master
      local took
      local calls = fleet_across(function() took = t:failover() end)
      print(("\n  fleet on sentinel, SENTINEL FAILOVER: 2 processes, %d calls, none failed (%.2f s until every"
        .. " sentinel named the new master); token requests: 1 before it, 0 during it, 1 after the tokens died")
        :format(calls, took))
    end)

  -- (last: the topology is left with one server)
  it("the master killed (kill -9): the store's failures are outages until the replica is promoted; a fleet "
    .. "makes no failed call and one token request", function()
    t:settle()
    local s = store()
    assert(s:set("n", { i = 0 }))
    local old = t:master_port()
    os.execute(("(sleep 0.3; kill -KILL %d) >/dev/null 2>&1 &"):format(t:server(old).pid))
    local r = under_load(s, old)
    t:server(old).pid = nil
    report("master killed", r)
    assert.matches("^unreachable %d+$", r.codes) -- every failure an outage (retryable): the fleet carries on
    t:server(old):restart() -- back as a replica of the new master (its config says nothing of it yet)
    t:server(old):cli("REPLICAOF", "127.0.0.1", tostring(t:master_port()))
    t:settle()
    old = t:master_port()
    local calls = fleet_across(function()
      t:server(old):kill()
      -- the tokens die once a new master answers (meanwhile each process would fetch its own)
      local deadline = socket.gettime() + 20
      while t:master_port() == old and socket.gettime() < deadline do socket.sleep(0.05) end
    end)
    print(("\n  fleet on sentinel, master killed: 2 processes, %d calls, none failed; token requests: 1 before"
      .. " it, 0 during it, 1 after the tokens died"):format(calls))
  end)
end)
