-- The Redis store on a real six-node Redis Cluster (three masters, three
-- replicas, started here on loopback ports, stopped by pid): key slots as
-- Redis computes them, the stores' contract, version counters in each value's
-- slot, MOVED and ASK while a slot migrates, and a master killed with kill -9
-- under a loop of store operations (its replica takes over; the operations go on), and under
-- a fleet of 3 nginx hosts and 2 plain-Lua processes (no failed call, one token request).
local avalara = require "avalara"
local cluster_client = require "avalara.redis.cluster"
local contract = require "spec.support.store_contract"
local redis_cluster = require "spec.support.redis_cluster"
local redis = require "spec.support.redis"
local socket = require "socket"
local emu = require "spec.support.emulator"
local H = require "spec.support.partner"
local nginx = require "spec.support.nginx"
local B = { describe = describe, it = it, before_each = before_each }

-- One nginx worker on the cluster store (cosockets): /get?key=K, /bench?n=N (N set+get pairs, their mean).
local CONF = [[
{{PREAMBLE}}
worker_processes 1;
events { worker_connections 64; }
http {
    {{HTTP_BASICS}}
    init_by_lua_block {
        S = require("avalara.store").redis { cluster = { {{SEEDS}} }, prefix = "{{PREFIX}}" }
    }
    server {
        listen 127.0.0.1:{{PORT}};
        default_type text/plain;
        location = /get {
            content_by_lua_block {
                local v, ver, err = S:get(ngx.var.arg_key)
                if err then return ngx.say(err.code, " ", err.message) end
                ngx.say(v and v.n, " ", ver)
            }
        }
        location = /bench {
            content_by_lua_block {
                local n = tonumber(ngx.var.arg_n)
                ngx.update_time()
                local t0 = ngx.now()
                for i = 1, n do
                    assert(S:set("b" .. i % 30, { n = i }))
                    assert(S:get("b" .. i % 30))
                end
                ngx.update_time()
                ngx.say(string.format("%.3f", (ngx.now() - t0) * 1000 / n))
            }
        }
    }
}
]]

-- A fleet host (one worker) on the cluster: /sections.
local FLEET_CONF = [[
{{PREAMBLE}}
worker_processes 1;
events { worker_connections 64; }
http {
    {{HTTP_BASICS}}
    lua_shared_dict avalara_tokens 1m;
    init_by_lua_block {
        F = require("avalara.fleet").new { environment = "local", emulator_url = "{{HTTP}}",
            account_id = "2000000001", license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001,
            shared_dict = "avalara_tokens", timeout = 10, redis = { cluster = { {{SEEDS}} }, prefix = "{{PREFIX}}" } }
    }
    server {
        listen 127.0.0.1:{{PORT}};
        default_type text/plain;
        location = /sections {
            content_by_lua_block {
                local s, err = F:sections()
                if not s then ngx.status = 502; return ngx.say(err.kind, " ", err.message) end
                ngx.say(#s)
            }
        }
    }
}
]]

local c
local seq = 0

-- The seeds as Lua string literals, for a configuration.
local function seeds_lua()
  local seeds = {}
  for i, a in ipairs(c:seeds()) do seeds[i] = '"' .. a .. '"' end
  return table.concat(seeds, ", ")
end
local function prefix()
  seq = seq + 1
  return ("cl%d:%d:"):format(os.time(), seq)
end

local APP_PASSWORD = "cluster-app-pw-6d0b3f"

setup(function()
  -- the default user without a password (the nodes' replication, redis-cli), and an ACL user
  c = redis_cluster.start { node_timeout = 1000, args = { "--user", "app", "on", ">" .. APP_PASSWORD, "~*", "&*",
    "+@all" } }
end)
teardown(function()
  if c then c:stop() end
end)

-- The replica of `victim` (a master), once it is in step with it.
local function replica_of(victim)
  local deadline = socket.gettime() + 20
  repeat
    for _, n in ipairs(c:nodes()) do
      if n.master_id == victim.id and c:cli(n.port, "INFO", "replication"):find("master_link_status:up", 1, true) then
        return n
      end
    end
    socket.sleep(0.05)
  until socket.gettime() > deadline
  error("no replica in step with " .. victim.port)
end

-- Waits until `replica` serves `slot` (its master failed over); the seconds it took.
local function takeover(slot, replica, since)
  while (c:node_of(slot) or {}).id ~= replica.id do
    assert(socket.gettime() - since < 30, "no takeover within 30 s")
    socket.sleep(0.05)
  end
  return socket.gettime() - since
end

local function store(p)
  return avalara.store.redis { cluster = c:seeds(), prefix = p or prefix() }
end

describe("key slots", function()
  it("are Redis's own (CRC16, hash tags)", function()
    for _, key in ipairs { "a", "foo", "user:1000", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "{}x",
      "a{b}c{d}", "avalara:token:abc", "123456789", "b\255x" } do
      local want = tonumber(c:cli(c.servers[1].port, "CLUSTER", "KEYSLOT", key))
      assert.equal(want, cluster_client.slot(key), key)
    end
    assert.equal(0x31C3, cluster_client.crc16("123456789"))
  end)

  it("give each slot a tag of its own, and each version counter the value's slot", function()
    for _, slot in ipairs { 0, 1, 866, 5460, 5461, 10922, 16383 } do
      assert.equal(slot, cluster_client.slot("{" .. cluster_client.tag(slot) .. "}"))
    end
    local p = prefix()
    local s = store(p)
    assert(s:set("token", { t = 1 }))
    local counter = p .. "avalara.store:version:{" .. cluster_client.tag(cluster_client.slot(p .. "token")) .. "}"
    local slot = tonumber(c:cli(c.servers[1].port, "CLUSTER", "KEYSLOT", p .. "token"))
    assert.equal(slot, tonumber(c:cli(c.servers[1].port, "CLUSTER", "KEYSLOT", counter)))
    assert.equal("1", c:cli(c:node_of(slot).port, "GET", counter):match("%d+"))
  end)
end)

contract("redis cluster", function() return store() end, B)
contract("redis cluster (ACL user)", function()
  return avalara.store.redis { cluster = c:seeds(), username = "app", password = APP_PASSWORD, prefix = prefix() }
end, B)

describe("a fleet on the cluster", function()
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

  it("3 nginx hosts and 2 processes share one token across a master killed with kill -9: no failed call", function()
    local p = prefix()
    local go, stop = dir .. "/go", dir .. "/stop"
    local before = tokens()
    local hosts, loops = {}, {}
    finally(function()
      assert(io.open(stop, "w")):close()
      for _, h in ipairs(hosts) do h:stop() end
    end)
    for i = 1, 3 do
      hosts[i] = nginx.start(FLEET_CONF, { HTTP = e.http_url, SEEDS = seeds_lua(), PREFIX = p })
    end
    local children = {}
    for i = 1, 2 do
      children[i] = H.spawn({ e.http_url, table.concat(c:seeds(), ","), p, go, stop },
        "spec/support/fleet_cluster_child.lua")
    end
    assert(io.open(go, "w")):close()
    -- each host: a request every 20 ms until the stop file, one status a line
    for i, h in ipairs(hosts) do
      loops[i] = dir .. "/statuses" .. i
      os.execute(("(while [ ! -e %s ]; do curl -s -o /dev/null -m 10 -w '%%{http_code}\\n' %s/sections; sleep 0.02; "
        .. "done) >%s 2>&1 &"):format(emu.shell_quote(stop), h.url, emu.shell_quote(loops[i])))
    end
    -- the token is in the cluster: find its master
    local token_key, victim
    local deadline = socket.gettime() + 10
    while not token_key do
      for _, n in ipairs(c:nodes()) do
        if n.master then
          local k = c:cli(n.port, "--scan", "--pattern", p .. "*token*"):match("[^\n]+")
          if k then token_key, victim = k, n end
        end
      end
      assert(socket.gettime() < deadline, "no token in the cluster")
      socket.sleep(0.05)
    end
    local replica = replica_of(victim)
    -- every host and process holds the token before the kill (one that starts during the outage
    -- fetches its own: docs/fleet.md, "Failover")
    local function started()
      for _, ch in ipairs(children) do
        if not emu.read_file(ch.out):find("first call ok", 1, true) then return false end
      end
      for _, file in ipairs(loops) do
        if not emu.read_file(file):find("200", 1, true) then return false end
      end
      return true
    end
    while not started() do
      assert(socket.gettime() < deadline + 20, "the hosts and processes did not start")
      socket.sleep(0.05)
    end
    socket.sleep(0.5)
    c:server(victim.port):kill()
    local took = takeover(cluster_client.slot(token_key), replica, socket.gettime())
    local at_takeover = tokens()
    -- the new master answers: after the breaker's second, every token dies and the fleet renews once
    socket.sleep(1.5)
    e:request("POST", "/_emulator/tokens/expire")
    socket.sleep(1)
    assert(io.open(stop, "w")):close()
    local out = H.wait(children, 30)
    socket.sleep(0.3) -- the curl loops' last requests
    local calls, failed = 0, 0
    for _, ch in ipairs(out) do
      local ok_n, f = ch.output:match("ok (%d+) failed (%d+)")
      assert(ok_n, ch.output)
      calls, failed = calls + tonumber(ok_n), failed + tonumber(f)
    end
    local host_calls, host_failed = 0, 0
    for i, file in ipairs(loops) do
      for status in emu.read_file(file):gmatch("%d+") do
        host_calls = host_calls + 1
        if status ~= "200" then host_failed = host_failed + 1 end
      end
      assert(host_calls > 0, "no request on host " .. i)
    end
    io.stderr:write(("\n[cluster fleet] 2 processes: %d calls, %d failed; 3 nginx hosts: %d requests, %d failed; "
      .. "takeover %.2f s after the kill; token requests: %d (one before the kill, one after the expiry)\n")
      :format(calls + failed, failed, host_calls, host_failed, took, tokens() - before))
    local why = out[1].output .. out[2].output .. hosts[1]:log() .. hosts[2]:log() .. hosts[3]:log()
    assert.equal(before + 1, at_takeover, why)
    assert.equal(0, failed, why)
    assert.equal(0, host_failed, hosts[1]:log())
    assert.equal(before + 2, tokens())
  end)
end)

describe("the cluster store", function()
  it("never repeats a version for a key (deleted, expired, set again)", function()
    local s = store()
    local seen = {}
    for i = 1, 20 do
      local ok, v = s:set("k", { i = i }, i % 3 == 0 and -1 or nil)
      assert.is_true(ok)
      assert.is_nil(seen[v])
      seen[v] = true
      if i % 4 == 0 then s:delete("k") end
    end
  end)

  it("fails at once on a wrong password, and on a standalone server, saying so", function()
    local s = avalara.store.redis { cluster = c:seeds(), username = "app", password = "wrong-pw-1e9c77" }
    local t0 = socket.gettime()
    local ok, err = s:set("k", { x = 1 })
    assert.is_nil(ok)
    assert.equal("auth", err.code)
    assert.is_false(err.retryable)
    assert.is_true(socket.gettime() - t0 < 0.5) -- not retried
    assert.is_nil(tostring(err):find("wrong-pw-1e9c77", 1, true))
    local lone = redis.start {}
    finally(function() lone:stop() end)
    local _, _, gerr = avalara.store.redis({ cluster = { "127.0.0.1:" .. lone.port } }):get("k")
    assert.equal("config", gerr.code)
    assert.matches("a standalone server: give 'host' and 'port', not 'cluster'", gerr.message, 1, true)
  end)

  it("rejects options that are not a cluster's, naming them", function()
    assert.error_matches(function() avalara.store.redis { cluster = {} } end, "'cluster' must be a list")
    assert.error_matches(function() avalara.store.redis { cluster = { "nohost" } } end, "'cluster' node 1")
    assert.error_matches(function() avalara.store.redis { cluster = { "h:1" }, db = 2 } end, "'db' must be 0")
    assert.error_matches(function() avalara.store.redis { cluster = { "h:1" }, port = 2 } end, "'host' and 'port'")
    assert.error_matches(function() avalara.store.redis { cluster = { "h:1", tries = 2 } } end, "'tries'")
  end)

  it("follows ASK while a slot migrates and MOVED once it moved", function()
    local p = prefix()
    local s = store(p)
    local ok, v1 = s:set("mig", { n = 1 })
    assert.is_true(ok)
    local key = p .. "mig"
    local slot = cluster_client.slot(key)
    local counter = p .. "avalara.store:version:{" .. cluster_client.tag(slot) .. "}"
    local host = nginx.start(CONF, { SEEDS = seeds_lua(), PREFIX = p })
    finally(function() host:stop() end)
    assert.same({ 200, "1 " .. v1 .. "\n" }, { host:get("/get?key=mig") }) -- the map, before the migration
    local source = c:node_of(slot)
    local target
    for _, n in ipairs(c:nodes()) do if n.master and n.id ~= source.id then target = n end end
    assert.matches("OK", c:cli(target.port, "CLUSTER", "SETSLOT", slot, "IMPORTING", source.id))
    assert.matches("OK", c:cli(source.port, "CLUSTER", "SETSLOT", slot, "MIGRATING", target.id))
    assert.matches("OK", c:cli(source.port, "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", key, counter))
    -- the keys are on the target now, the slot still the source's: ASK
    local got, v = s:get("mig")
    assert.same({ n = 1 }, got)
    assert.equal(v1, v)
    assert.same({ 200, "1 " .. v1 .. "\n" }, { host:get("/get?key=mig") }) -- ASK on cosockets
    local ok2, v2 = s:set("mig", { n = 2 })
    assert.is_true(ok2)
    assert.is_true(v2 > v1)
    assert.equal("127.0.0.1:" .. source.port, s.redis.slots[slot]) -- ASK leaves the map
    for _, n in ipairs(c:nodes()) do
      if n.master then c:cli(n.port, "CLUSTER", "SETSLOT", slot, "NODE", target.id) end
    end
    -- the slot is the target's now: MOVED, and the map follows
    assert.equal(2, s:get("mig").n)
    assert.equal("127.0.0.1:" .. target.port, s.redis.slots[slot])
    assert.same({ 200, "2 " .. v2 .. "\n" }, { host:get("/get?key=mig") }) -- MOVED on cosockets
    local _, per_pair = host:get("/bench?n=2000")
    io.stderr:write(("\n[cluster nginx] a set+get pair on cosockets: %.3f ms (mean of 2000)\n"):format(tonumber(per_pair)))
    local ok3, v3 = s:cas("mig", v2, { n = 3 })
    assert.is_true(ok3)
    assert.is_true(v3 > v2)
  end)

  it("goes on while redis-cli reshards the slots of its keys, versions only growing", function()
    local p = prefix()
    local s = store(p)
    local masters = {}
    for _, n in ipairs(c:nodes()) do if n.master then masters[#masters + 1] = n end end
    local source, target = masters[1], masters[2]
    -- 40 keys in the source's first 20 slots (hash tags), the ones redis-cli moves first
    local keys, slots = {}, {}
    for slot = source.slots[1][1], source.slots[1][1] + 19 do
      slots[#slots + 1] = slot
      for j = 1, 2 do keys[#keys + 1] = "{" .. cluster_client.tag(slot) .. "}r" .. j end
    end
    local last = {}
    for _, k in ipairs(keys) do local _, v = assert(s:set(k, { n = 0 })); last[k] = v end
    local done = os.tmpname()
    os.remove(done)
    os.execute(("(redis-cli --cluster reshard 127.0.0.1:%d --cluster-from %s --cluster-to %s --cluster-slots 20 "
      .. "--cluster-yes >%s.log 2>&1; touch %s) &"):format(source.port, source.id, target.id, done, done))
    finally(function() os.remove(done); os.remove(done .. ".log") end)
    local ops, failed, reasons, after = 0, 0, {}, 0
    local deadline = socket.gettime() + 30
    while after < 200 do
      if io.open(done) then after = after + 1 end
      local k = keys[ops % #keys + 1]
      ops = ops + 1
      local ok, v = s:set(k, { n = ops })
      if ok then
        assert.is_true(v > last[k], k)
        last[k] = v
        local cur, have = s:get(k)
        if have then assert.equal(v, have); assert.equal(ops, cur.n) end
      else
        failed = failed + 1
        reasons[#reasons + 1] = v.message:gsub("127%.0%.0%.1:%d+", "NODE")
      end
      assert(socket.gettime() < deadline, "the reshard did not end within 30 s")
    end
    local log = emu.read_file(done .. ".log")
    local st = s.redis.stats
    io.stderr:write(("\n[cluster reshard] 20 slots moved while %d store sets+gets ran: %d failed%s; followed %d MOVED, "
      .. "%d ASK, %d attempts repeated (TRYAGAIN)\n")
      :format(ops, failed, #reasons > 0 and (": " .. table.concat(reasons, "; ")) or "", st.moved, st.ask, st.retried))
    assert.is_true(st.moved > 0)
    assert.equal(0, failed)
    for _, slot in ipairs(slots) do assert.equal(target.id, c:node_of(slot).id, log) end
  end)

  it("goes on when a master is killed with kill -9 and its replica takes over", function()
    local p = prefix()
    local s = store(p)
    local nodes, victim = c:nodes(), nil
    for _, n in ipairs(nodes) do
      for _, r in ipairs(nodes) do if n.master and r.master_id == n.id then victim = victim or n end end
    end
    assert(victim, "no master with a replica")
    local replica = replica_of(victim)
    local slot = victim.slots[1][1]
    local ops, failed, first_fail, killed_at, slow, after_ok, took = 0, 0, nil, nil, 0, 0, nil
    local started = socket.gettime()
    local lat, reasons, failed_other, slow_other = {}, {}, 0, 0
    local function on_victim(key)
      local k = cluster_client.slot(key)
      for _, r in ipairs(victim.slots) do if k >= r[1] and k <= r[2] then return true end end
      return false
    end
    while true do
      local i = ops % 30 + 1
      local t0 = socket.gettime()
      local ok, err = s:set("k" .. i, { i = i, op = ops })
      if ok then ok, err = s:get("k" .. i) end
      local dt = socket.gettime() - t0
      ops = ops + 1
      if not killed_at then lat[#lat + 1] = dt end
      local theirs = on_victim(p .. "k" .. i)
      if dt > 0.1 then slow = slow + 1; if not theirs then slow_other = slow_other + 1 end end
      if ok == nil then
        failed = failed + 1
        if not theirs then failed_other = failed_other + 1 end
        reasons[#reasons + 1] = err.message:match("[^(]*"):gsub("127%.0%.0%.1:%d+", "NODE")
        first_fail = first_fail or (socket.gettime() - killed_at)
        assert.equal("unreachable", err.code, tostring(err))
      elseif killed_at then
        after_ok = after_ok + 1
      end
      if not killed_at and socket.gettime() - started > 0.5 then
        c:server(victim.port):kill()
        killed_at = socket.gettime()
      end
      if killed_at and not took and ops % 25 == 0 and (c:node_of(slot) or {}).id == replica.id then
        took = socket.gettime() - killed_at
      end
      if took and after_ok > 300 then break end
      assert(socket.gettime() - started < 30, "no takeover within 30 s")
    end
    table.sort(lat)
    io.stderr:write(("\n[cluster failover] %d set+get pairs (median %.2f ms, p99 %.2f ms before the kill), "
      .. "%d failed (%d on the other masters' slots; the first %.2f s after the kill: %s), %d slower than 100 ms "
      .. "(%d on the other masters' slots); takeover seen %.2f s after the kill\n")
      :format(ops, lat[math.ceil(#lat / 2)] * 1000, lat[math.ceil(#lat * 0.99)] * 1000, failed, failed_other,
        first_fail or -1, table.concat(reasons, "; "), slow, slow_other, took))
    assert.is_true(failed <= 3, failed .. " failed")
    for i = 1, 30 do assert(s:set("k" .. i, { i = i })) end
  end)
end)
