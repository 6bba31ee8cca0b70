-- Security of the Redis parts (issue 20), on real servers started here on
-- loopback ports and stopped by pid:
--
-- - a hostile server (spec/support/hostile_redis.lua): a reply nested 300 000
--   deep, a bulk string of 2^40 bytes, an endless line, an array of 2^31
--   elements, a reply of the wrong type: each is `nil, err` (kind "store",
--   code "protocol") at once, never a raise, a stack overflow or the memory
--   filled;
-- - a misconfigured Redis (a real redis-server: wrong or missing password,
--   an ACL user without the commands or keys used, `db` out of range, a TLS
--   certificate not trusted or not naming the server): every call of a
--   client (`avalara.new` with the Redis store, and `avalara.fleet`) fails
--   with that error, without the password, no token is fetched and nothing
--   is kept aside;
-- - an outage (the server killed): the fleet carries on with exactly one
--   warning, and a client on the Redis store alone carries on at once.
local avalara = require "avalara"
local fleet = require "avalara.fleet"
local emu = require "spec.support.emulator"
local redis = require "spec.support.redis"
local hostile = require "spec.support.hostile"
local H = require "spec.support.partner"
local socket = require "socket"

local PASSWORD, WRONG = "sec-redis-pw-5d0b1e93", "wrong-redis-pw-a7c3f210"
local LIMITED_PW, KEYLESS_PW = "limited-pw-8e21c4d7", "keyless-pw-3f90ab56"
local LICENSE = "DEMO-LICENSE-KEY-0001"
local SECRETS = { PASSWORD, WRONG, LIMITED_PW, KEYLESS_PW, LICENSE }

describe("a hostile Redis server", function()
  local function against(mode, fn)
    local h = hostile.spawn("spec/support/hostile_redis.lua", { mode })
    local port = tonumber(h.url:match(":(%d+)$"))
    -- the password: the first reply read is AUTH's (no password for "number": GET's is)
    local ok, err = pcall(fn, avalara.store.redis { port = port, password = mode ~= "number" and PASSWORD or nil,
      timeout = 10 }, port)
    h:stop()
    assert(ok, err)
  end

  -- The store's get fails with a protocol error: it read no more than its limits
  -- and did not wait for its 10 s timeout (that would be code "unreachable").
  local function fails(store, port, pattern)
    local v, version, err = store:get("k")
    assert.is_nil(v)
    assert.is_nil(version)
    assert.equal("store", err.kind)
    assert.equal("protocol", err.code)
    assert.is_false(err.retryable)
    assert.matches("^redis 127.0.0.1:" .. port .. "/0: " .. pattern, err.message)
    H.no_secret(SECRETS, tostring(err))
  end

  it("a reply nested 300000 deep is an error, not a stack overflow", function()
    against("nest", function(store, port)
      fails(store, port, "the reply nests arrays more than 32 deep")
    end)
  end)

  it("a bulk string of 2^40 bytes fails at once, before a byte of it is read", function()
    against("huge", function(store, port)
      collectgarbage()
      local before = collectgarbage("count")
      fails(store, port, "the reply is too large %(a string of 1099511627776 bytes; at most 16777216 bytes")
      assert.is_true(collectgarbage("count") - before < 4096, "memory grew by " .. (collectgarbage("count") - before))
    end)
  end)

  it("a line without its end and an array of 2^31 elements stop within the limits", function()
    against("line", function(store, port)
      fails(store, port, "a reply line is longer than 65536 bytes")
    end)
    against("array", function(store, port)
      fails(store, port, "the reply is too large %(an array of 2147483648 elements")
    end)
  end)

  it("a reply of a type Redis never gives is an error, not a raise", function()
    against("number", function(store, port)
      fails(store, port, "unexpected reply to GET")
    end)
  end)
end)

describe("a misconfigured Redis", function()
  local e, r
  local seq = 0

  setup(function()
    e = emu.start()
    r = redis.start { password = PASSWORD, args = {
      "--user", "limited", "on", ">" .. LIMITED_PW, "~*", "+get", "+auth", "+select",   -- read only
      "--user", "keyless", "on", ">" .. KEYLESS_PW, "~other:*", "+@all" } }                     -- other keys
  end)
  teardown(function()
    if r then r:stop() end
    if e then e:stop() end
  end)

  local function prefix()
    seq = seq + 1
    return ("sec%d:%d:"):format(os.time(), seq)
  end

  local function tokens()
    return ((e:counters().grants.connect_token or {}).client_credentials or 0)
  end

  local function options(extra)
    local o = { environment = "local", emulator_url = e.http_url, account_id = "2000000001", license_key = LICENSE,
      company_id = 1001, timeout = 5 }
    for k, v in pairs(extra) do o[k] = v end
    return o
  end

  -- Both clients on `redis_opts` fail their calls with kind "store" and `code`, twice (every call,
  -- not the first only), without fetching a token, warning or keeping anything aside.
  local function loud(redis_opts, code, pattern)
    redis_opts.prefix = redis_opts.prefix or prefix()
    redis_opts.port = redis_opts.port or r.port
    local warnings = {}
    local before = tokens()
    local plain = avalara.new(options { store = avalara.store.redis(redis_opts),
      on_warning = function(m) warnings[#warnings + 1] = m end })
    local fc = fleet.new(options { redis = redis_opts, on_warning = function(m) warnings[#warnings + 1] = m end })
    local texts = {}
    for _, c in ipairs { plain, fc, plain, fc } do
      local started = socket.gettime()
      local s, err = c:sections()
      assert.is_nil(s)
      assert.is_true(socket.gettime() - started < 10) -- no wait for a lock (that would be its 60 s lease)
      assert.equal("store", err.kind)
      assert.equal(code, err.code)
      assert.is_false(err.retryable)
      assert.matches(pattern, err.message)
      texts[#texts + 1] = tostring(err)
    end
    assert.equal(before, tokens())          -- nobody fetched a token of their own
    assert.same({}, warnings)               -- the error is the call's, not a warning
    assert.is_nil(plain._kept)
    assert.equal("up", fc:fleet_status().state)
    H.no_secret(SECRETS, table.concat(texts, "\n"), tostring(plain), tostring(fc), H.dump(fc.store))
    return texts
  end

  it("a wrong password fails every call (WRONGPASS), never a token of each process's own", function()
    loud({ password = WRONG }, "auth",
      "^redis 127.0.0.1:%d+/0: authentication failed %(WRONGPASS invalid username%-password pair")
    loud({ username = "limited", password = WRONG }, "auth", "authentication failed %(WRONGPASS")
  end)

  it("a missing password fails every call (NOAUTH)", function()
    loud({}, "auth", "^redis 127.0.0.1:%d+/0: NOAUTH Authentication required")
  end)

  it("an ACL user without the commands or keys used fails every call (NOPERM)", function()
    loud({ username = "limited", password = LIMITED_PW }, "noperm", "NOPERM")
    loud({ username = "keyless", password = KEYLESS_PW }, "noperm", "NOPERM.*keys")
  end)

  it("a database out of range fails every call", function()
    loud({ password = PASSWORD, db = 4000 }, "config",
      "^redis 127.0.0.1:%d+/4000: SELECT 4000 failed %(ERR DB index is out of range%)")
  end)

  it("TLS: verified by default, the name checked; an untrusted or misnamed certificate fails every call", function()
    local dir = H.tmpdir()
    local function sh(cmd) assert(os.execute("cd " .. emu.shell_quote(dir) .. " && " .. cmd .. " >/dev/null 2>&1"), cmd) end
    -- the reproducer's server: a self-signed certificate for CN=127.0.0.1
    sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout self.key -out self.pem -days 1 -subj /CN=127.0.0.1 && cp self.pem ca.pem")
    local port = emu.free_port()
    local t = redis.start { password = PASSWORD, args = { "--port", "0", "--tls-port", tostring(port),
      "--tls-cert-file", dir .. "/self.pem", "--tls-key-file", dir .. "/self.key",
      "--tls-ca-cert-file", dir .. "/self.pem", "--tls-auth-clients", "no" }, tls = { port = port, dir = dir } }
    local ok, err = pcall(function()
      -- tls = true: the system's CAs, which do not trust it
      loud({ port = port, password = PASSWORD, tls = true }, "tls", "TLS handshake failed: .*certificate")
      loud({ port = port, password = PASSWORD, tls = { cafile = dir .. "/self.pem", server_name = "evil.example" } },
        "tls", "TLS handshake failed: the certificate does not name evil.example")
      -- trusted and named: it works; verify = false is the explicit way out
      for _, tls in ipairs { { cafile = dir .. "/self.pem" }, { verify = false } } do
        local s = avalara.store.redis { port = port, password = PASSWORD, prefix = prefix(), tls = tls }
        assert(s:set("k", { v = 1 }))
        assert.same({ v = 1 }, (s:get("k")))
      end
    end)
    t:stop()
    H.rmdir(dir)
    assert(ok, err)
  end)

  it("an outage (the server killed) takes the failover with exactly one warning, and no wait", function()
    local down = redis.start { password = PASSWORD }
    local warnings, plain_warnings = {}, {}
    local redis_opts = { port = down.port, password = PASSWORD, prefix = prefix() }
    local fc = fleet.new(options { redis = redis_opts, on_warning = function(m) warnings[#warnings + 1] = m end })
    local plain = avalara.new(options { store = avalara.store.redis(redis_opts),
      on_warning = function(m) plain_warnings[#plain_warnings + 1] = m end })
    local ok, err = pcall(function()
      assert(fc:sections())
      down:kill()
      e:request("POST", "/_emulator/tokens/expire")
      for _ = 1, 3 do
        local started = socket.gettime()
        assert(fc:sections())
        assert(plain:sections())  -- its own token at once (the store cannot lock: no waiting for it)
        assert.is_true(socket.gettime() - started < 10) -- no wait for a lock (that would be its 60 s lease)
      end
      assert.equal(1, #warnings)
      assert.equal("redis 127.0.0.1:" .. down.port .. "/0 cannot be reached (cannot connect: connection refused): "
        .. "carrying on with local state; trying it again every 1 s", warnings[1])
      assert.equal("down", fc:fleet_status().state)
      assert.equal(1, #plain_warnings)
      assert.matches("cannot keep the token in avalara.store.redis%(127.0.0.1:%d+/0, prefix .-%): avalara: store error "
        .. "unreachable: redis .- cannot connect: connection refused %(it is used for this process only%)", plain_warnings[1])
      H.no_secret(SECRETS, table.concat(warnings, "\n"), table.concat(plain_warnings, "\n"))
    end)
    down:stop()
    assert(ok, err)
  end)
end)
