-- Security of the webhook receiver (issue 20, finding 3 and the webhook part
-- of 12; /work/shared/repro/security/webhook_empty_secret.lua): a receiver
-- without a usable secret (missing, empty as an unset AVALARA_WEBHOOK_SECRET,
-- short, not a string) accepts nothing and says why instead of accepting
-- what the empty key signs; timestamps are epoch seconds within the window;
-- each event id is claimed in one atomic check-and-set, so of copies of one
-- event (a replay, a retry, several at once) exactly one is handled: in one
-- process, in several processes on one SQLite file (INSERT OR IGNORE), and
-- on a real redis-server (SET NX through avalara.redis.client, cas through
-- avalara.store.redis). The shared-dict seen inside nginx is in
-- spec/integration/openresty/webhook_security_spec.lua.
local core = require "avalara.core"
local store = require "avalara.store"
local webhook = require "avalara.webhook"
local emu = require "spec.support.emulator"
local redis = require "spec.support.redis"
local socket = require "socket"

local LUA = os.getenv("SPEC_LUA") or (rawget(_G, "jit") and "luajit" or "lua5.4")
local SECRET = ("k"):rep(64)

local function body_of(id)
  return ('{"id":"%s","eventType":"HSCodeAssigned","itemId":5,"itemCode":"A","classifications":'
    .. '[{"productCode":"610910","country":"US","systemCode":"HTS"}]}'):format(id)
end

local function signed(body, key, ts)
  ts = ts or os.time()
  return { ["X-Avalara-Timestamp"] = tostring(ts), ["X-Avalara-Signature"] = "v1=" .. core.hmac_sha256(key or SECRET,
    tostring(ts) .. "." .. body) }
end

local function tmpdir()
  local p = assert(io.popen("mktemp -d /tmp/avalara-webhook.XXXXXX"))
  local dir = p:read("*l")
  p:close()
  return dir
end

-- n receiver processes handle the same event at the same moment; returns the
-- statuses they answered ({"200", "409", "200 duplicate", ...}) and how many
-- times on_event ran.
local function race(kind, target, n, id)
  local dir = tmpdir()
  local log = dir .. "/handled"
  local start = string.format("%.3f", socket.gettime() + 0.8)
  local cmds = {}
  for i = 1, n do
    cmds[i] = table.concat({ LUA, "spec/support/webhook_delivery.lua", kind, emu.shell_quote(target), start,
      emu.shell_quote(log), emu.shell_quote(id) }, " ") .. " &"
  end
  local p = assert(io.popen("unset LD_PRELOAD; cd " .. emu.shell_quote(emu.repo_root()) .. " && "
    .. table.concat(cmds, " ") .. " wait"))
  local statuses = {}
  for line in p:lines() do statuses[#statuses + 1] = (line:gsub("%s+$", "")) end
  p:close()
  local handled = 0
  local f = io.open(log)
  if f then
    for _ in f:lines() do handled = handled + 1 end
    f:close()
  end
  os.execute("rm -rf " .. emu.shell_quote(dir))
  table.sort(statuses)
  return statuses, handled
end

-- Exactly one copy handled, the others refused while it ran (409) or after (duplicate).
local function assert_one_handled(statuses, handled, n)
  assert.equal(n, #statuses, table.concat(statuses, ","))
  assert.equal(1, handled)
  local ok, busy = 0, 0
  for _, s in ipairs(statuses) do
    if s == "200" then ok = ok + 1 elseif s == "409" then busy = busy + 1
    else assert.equal("200 duplicate", s) end
  end
  assert.equal(1, ok, table.concat(statuses, ","))
  -- the copies overlapped: some arrived while the first was being handled
  assert.truthy(busy >= 1, table.concat(statuses, ","))
end

describe("webhook secret", function()
  local body = body_of("forged-1")

  it("refuses a forgery signed with the empty key when AVALARA_WEBHOOK_SECRET is empty (the reproducer)", function()
    local forged = signed(body, "")
    local event, err = webhook.parse(body, forged, { secret = "" })
    assert.is_nil(event)
    assert.equal(500, err.status)
    assert.truthy(err.message:find("AVALARA_WEBHOOK_SECRET", 1, true), err.message)
    assert.truthy(err.message:find("'secret'", 1, true))
    assert.truthy(err.message:find("is empty", 1, true))
    -- under a real secret the same forgery is a bad signature
    assert.equal(401, select(2, webhook.parse(body, forged, { secret = SECRET })).status)
  end)

  it("answers an error, never raising and never accepting, for a missing, short or non-string secret", function()
    local cases = { { nil, "is not set" }, { 12345, "is a number" }, { true, "is a boolean" },
      { {}, "is a table" }, { false, "is a boolean" }, { "fifteen-bytes!!", "shorter than 16 bytes" } }
    for _, c in ipairs(cases) do
      local key = type(c[1]) == "string" and c[1] or ""
      local ok, event, err = pcall(webhook.parse, body, signed(body, key), { secret = c[1] })
      assert.is_true(ok, tostring(event))
      assert.is_nil(event)
      assert.equal(500, err.status)
      assert.is_false(err.retryable == false, "a receiver fixed later takes the retry")
      assert.truthy(err.message:find(c[2], 1, true), err.message)
      assert.is_nil(err.message:find("fifteen", 1, true), "never the secret")
    end
    -- 16 bytes is enough
    local key = ("x"):rep(16)
    assert.equal("forged-1", assert(webhook.parse(body, signed(body, key), { secret = key })).id)
  end)

  it("raises at configuration in handle (and openresty) without a usable secret or seen, naming the option", function()
    local function on_event() error("must not run") end
    local headers = signed(body, "")
    for _, s in ipairs { "", "short", 42 } do
      local ok, msg = pcall(webhook.handle, body, headers, { secret = s, seen = false, on_event = on_event })
      assert.is_false(ok)
      assert.truthy(msg:find("avalara.webhook.handle: the webhook signing secret ('secret', e.g. AVALARA_WEBHOOK_SECRET)",
        1, true), msg)
    end
    local ok, msg = pcall(webhook.handle, body, signed(body), { secret = SECRET, on_event = on_event })
    assert.is_false(ok)
    assert.truthy(msg:find("'seen' must be", 1, true), msg)
    -- the former seen(id) -> boolean (check, then mark elsewhere) cannot be atomic: refused
    ok, msg = pcall(webhook.handle, body, signed(body), { secret = SECRET, on_event = on_event,
      seen = function() return false end })
    assert.is_false(ok)
    assert.truthy(msg:find("cannot be atomic", 1, true), msg)
    assert.has_error(function()
      webhook.handle(body, signed(body), { secret = SECRET, on_event = on_event, seen = { claim = print } })
    end, "avalara.webhook.handle: 'seen' has no done method")
    -- a remembered id must outlive the timestamp window
    assert.has_error(function() webhook.seen.store(store.memory(), { ttl = 60 }) end)
    assert.has_error(function()
      webhook.handle(body, signed(body), { secret = SECRET, on_event = on_event, tolerance = 3600,
        seen = webhook.seen.store(store.memory(), { ttl = 600 }) })
    end)
  end)

  it("takes only epoch seconds within the window, either side, under the signature", function()
    local function status(h, o)
      local _, err = webhook.parse(body, h, o or { secret = SECRET })
      return err and err.status or 200
    end
    local now = os.time()
    assert.equal(200, status(signed(body, SECRET, now)))
    assert.equal(401, status(signed(body, SECRET, now - 301)))
    assert.equal(401, status(signed(body, SECRET, now + 301)))
    for _, ts in ipairs { "0x" .. string.format("%x", now), " " .. now, now .. ".0", "1e9", "-" .. now, "" } do
      local h = { ["X-Avalara-Timestamp"] = ts,
        ["X-Avalara-Signature"] = "v1=" .. core.hmac_sha256(SECRET, ts .. "." .. body) }
      assert.equal(401, status(h), ts)
    end
    -- a new timestamp on an old signature
    local h = signed(body, SECRET, now - 10)
    h["X-Avalara-Timestamp"] = tostring(now)
    assert.equal(401, status(h))
  end)
end)

describe("webhook seen ids", function()
  local body = body_of("evt-1")

  local function handler(seen, calls, fail)
    return { secret = SECRET, seen = seen, on_event = function(event)
      calls[#calls + 1] = event.id
      if fail and fail() then error("database down") end
    end }
  end

  it("handles an event once: the same signed delivery again is answered 200 duplicate (the replay)", function()
    local calls = {}
    local opts = handler(webhook.seen.store(store.memory()), calls)
    local h = signed(body)
    local status, answer, event = webhook.handle(body, h, opts)
    assert.same({ 200, { ok = true }, "evt-1" }, { status, answer, event.id })
    status, answer, event = webhook.handle(body, h, opts)
    assert.same({ 200, { ok = true, duplicate = true } }, { status, answer })
    assert.is_nil(event)
    -- a retry: the same event under a new timestamp and signature
    assert.same({ 200, { ok = true, duplicate = true } }, { webhook.handle(body, signed(body, SECRET, os.time() - 5),
      opts) })
    assert.same({ "evt-1" }, calls)
  end)

  it("forgets the claim when on_event raises, so the retry is handled; 409 while it is being handled", function()
    local calls, failing = {}, true
    local seen = webhook.seen.store(store.memory())
    local opts = handler(seen, calls, function() return failing end)
    local status, answer, _, log = webhook.handle(body, signed(body), opts)
    assert.same({ 500, { error = "the event could not be handled" } }, { status, answer })
    assert.truthy(log:find("database down", 1, true))
    failing = false
    assert.equal(200, (webhook.handle(body, signed(body), opts)))
    assert.same({ "evt-1", "evt-1" }, calls)
    -- a claim held (another copy being handled): 409, on_event not called
    assert.truthy(seen:claim("evt-2"))
    assert.same({ 409, { error = "this event is being handled: send it again later" } },
      { webhook.handle(body_of("evt-2"), signed(body_of("evt-2")), opts) })
    assert.equal(2, #calls)
  end)

  it("answers 503 and handles nothing when the seen ids cannot be asked", function()
    local calls = {}
    local down = { claim = function() return nil, "connection refused" end, done = print, release = print }
    local status, answer, _, log = webhook.handle(body, signed(body), handler(down, calls))
    assert.equal(503, status)
    assert.truthy(answer.error)
    assert.truthy(log:find("connection refused", 1, true))
    assert.same({}, calls)
  end)

  describe("on SQLite (INSERT OR IGNORE)", function()
    local dir
    before_each(function() dir = tmpdir() end)
    after_each(function() os.execute("rm -rf " .. emu.shell_quote(dir)) end)

    it("claims, remembers, releases and forgets after the ttl", function()
      local seen = assert(webhook.seen.sqlite(dir .. "/seen.db", { pending_ttl = 1 }))
      local other = assert(webhook.seen.sqlite(dir .. "/seen.db")) -- another connection, as another process
      local token = assert(seen:claim("a'1"))
      assert.same({ false, "pending" }, { other:claim("a'1") })
      assert.is_true(other:release("a'1", "pending not-the-owner"))
      assert.same({ false, "pending" }, { other:claim("a'1") }, "another's release does not forget it")
      assert.is_true(seen:release("a'1", token))
      token = assert(other:claim("a'1"))
      assert.is_true(other:done("a'1", token))
      assert.same({ false, "done" }, { seen:claim("a'1") })
      -- a claim past its pending_ttl (a receiver that died) is taken again
      assert.truthy(seen:claim("b"))
      assert.same({ false, "pending" }, { other:claim("b") })
      local db = require("luasql.sqlite3").sqlite3():connect(dir .. "/seen.db")
      assert.equal(1, db:execute("UPDATE avalara_webhook_seen SET expires = " .. (os.time() - 1) .. " WHERE id = 'b'"))
      db:close()
      assert.truthy(other:claim("b"))
      seen:close()
      other:close()
      assert.has_error(function() webhook.seen.sqlite(dir .. "/x.db", { table = "t; DROP TABLE x" }) end)
    end)

    it("of 6 processes receiving the same event at once, exactly one handles it", function()
      local statuses, handled = race("sqlite", dir .. "/seen.db", 6, "evt-sqlite")
      assert_one_handled(statuses, handled, 6)
    end)
  end)

  describe("on Redis", function()
    local PASSWORD = "webhook-spec-pw-7c1e"
    local r
    setup(function() r = redis.start { password = PASSWORD } end)
    teardown(function() if r then r:stop() end end)

    it("claims with SET NX PX (avalara.redis.client): pending for pending_ttl, done for ttl", function()
      local client = require("avalara.redis.client").new { port = r.port, password = PASSWORD }
      local seen = webhook.seen.redis(client, { pending_ttl = 30, ttl = 600, prefix = "t1:" })
      local token = assert(seen:claim("e1"))
      assert.same({ false, "pending" }, { seen:claim("e1") })
      local pttl = tonumber(r:cli("PTTL", "t1:e1"):match("%d+"))
      assert.truthy(pttl > 25000 and pttl <= 30000, pttl)
      assert.is_true(seen:release("e1", "pending someone-else"))
      assert.truthy(r:cli("GET", "t1:e1"):find(token, 1, true), "kept: not that claim's")
      assert.is_true(seen:done("e1", token))
      assert.same({ false, "done" }, { seen:claim("e1") })
      pttl = tonumber(r:cli("PTTL", "t1:e1"):match("%d+"))
      assert.truthy(pttl > 590000 and pttl <= 600000, pttl)
      client:close()
    end)

    it("claims with one cas on an avalara.store.redis", function()
      local s = require("avalara.store.redis").new { port = r.port, password = PASSWORD, prefix = "t2:" }
      local seen = webhook.seen.redis(s)
      local token = assert(seen:claim("e1"))
      assert.same({ false, "pending" }, { seen:claim("e1") })
      assert.is_true(seen:release("e1", token))
      token = assert(seen:claim("e1"))
      assert.is_true(seen:done("e1", token))
      assert.same({ false, "done" }, { seen:claim("e1") })
      local raw = r:cli("GET", "t2:avalara.webhook:e1")
      assert.truthy(raw:find("state", 1, true) and raw:find("done", 1, true), raw)
      s:close()
    end)

    it("of 6 processes receiving the same event at once, exactly one handles it (client, then store)", function()
      local statuses, handled = race("redis", r.port .. "/" .. PASSWORD, 6, "evt-redis")
      assert_one_handled(statuses, handled, 6)
      statuses, handled = race("store", r.port .. "/" .. PASSWORD, 6, "evt-store")
      assert_one_handled(statuses, handled, 6)
    end)

    it("answers 503 when Redis is down, and handles the retry once it is back", function()
      local client = require("avalara.redis.client").new { port = r.port, password = PASSWORD, timeout = 0.5 }
      local calls = {}
      local opts = handler(webhook.seen.redis(client, { prefix = "t3:" }), calls)
      r:kill()
      local status = webhook.handle(body, signed(body), opts)
      r:restart()
      assert.equal(503, status)
      assert.same({}, calls)
      assert.equal(200, (webhook.handle(body, signed(body), opts)))
      assert.same({ "evt-1" }, calls)
      client:close()
    end)
  end)
end)
