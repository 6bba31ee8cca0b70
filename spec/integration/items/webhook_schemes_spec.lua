-- The two webhook signing schemes (issue 24, item 6) on real deliveries of
-- the emulator to a receiver process on loopback: the published
-- body-signature scheme (Avalara's E-Invoicing WebhookInvocation /
-- EventMessage, HMAC-SHA256 or HMAC-SHA512 under the subscriber's key,
-- chosen by the registration's `signature`) and the header scheme (this
-- project's assumption). For each: a valid delivery is accepted, a tampered
-- body, a wrong key, a replay and an unknown algorithm are refused with a
-- clear error.
local webhook = require "avalara.webhook"
local store = require "avalara.store"
local H = require "spec.support.items"

local KEY = "subscriber-chosen-key-0123456789"

describe("webhook signing schemes, delivered by the emulator", function()
  local S = H.emulator { classification_delay = 0, webhook_retry_delay = 0.2 }
  setup(S.start)
  teardown(S.stop)
  before_each(S.reset)
  local receiver
  after_each(function()
    if receiver then receiver.stop(); receiver = nil end
  end)

  local function register(url, signature)
    local res = S.api("POST", H.REGISTRATIONS, { json = { connectorName = "shop", url = url, typeName = "Webhook",
      events = "HSCodeAssigned", signature = signature } })
    assert(res.status == 201, res.body)
    return res.json
  end

  -- One item classified for one country; the first delivery the receiver got.
  local function delivery(code, n)
    local item = S.create({ { itemCode = code or "TS-1", description = "men's cotton t-shirt" } })[1]
    assert.equal(200, S.initiate({ item.id }, { "US" }).status)
    local got = H.eventually(function()
      local d = receiver.deliveries()
      return #d >= (n or 1) and d
    end)
    assert.truthy(got, "a delivery")
    return got[n or 1], item
  end

  -- A receiver's options: `calls` counts on_event runs.
  local function handler(opts, calls)
    opts.seen = webhook.seen.store(store.memory())
    opts.on_event = function(event) calls[#calls + 1] = event.id end
    return opts
  end

  local function refused(body, headers, opts, status, pattern)
    local ev, err = webhook.parse(body, headers, opts)
    assert.is_nil(ev)
    assert.equal(status, err.status)
    assert.truthy(err.message:find(pattern), err.message)
    assert.is_nil(err.message:find(opts.secret or "\0", 1, true))
    return err
  end

  describe("body (published: E-Invoicing)", function()
    for _, alg in ipairs { "sha256", "sha512" } do
      it("HMAC-" .. alg:upper() .. ": accepts a valid delivery once; refuses a tampered body, a wrong key, a replay "
        .. "and an unknown algorithm", function()
        receiver = H.receiver()
        local reg = register(receiver.url, { type = "hmac", key = KEY, algorithm = alg })
        -- the key never comes back
        assert.same({ type = "hmac", algorithm = alg }, reg.signature)
        assert.is_nil(S.api("GET", H.REGISTRATIONS .. "/" .. H.id(reg.registrationId)).body:find(KEY, 1, true))
        local d, item = delivery()
        -- the published shape, no header of the other scheme
        assert.is_nil(d.headers["x-avalara-signature"])
        local doc = require("cjson").decode(d.body)
        assert.equal(1, doc.retry_count)
        assert.truthy(doc.invocation_timestamp and doc.retry_timestamp and doc.id)
        local m = doc.items[1]
        assert.same({ "hmac", alg, "HSCodeAssigned", "1001" }, { m.signature.type, m.signature.algorithm,
          m.event_name, m.tenant_id })
        assert.equal(alg == "sha256" and 64 or 128, #m.signature.value)

        local opts = { scheme = "body", secret = KEY }
        local events = assert(webhook.parse(d.body, d.headers, opts))
        assert.equal(1, #events)
        assert.equal(doc.id, events.id)
        local event = events[1]
        assert.same({ "HSCodeAssigned", item.id, "TS-1", reg.registrationId, 1 },
          { event.eventType, event.itemId, event.itemCode, event.registrationId, event.attempt })
        assert.equal("610910", event.classifications[1].productCode)
        assert.equal(m.correlation_id, event.id)
        -- pinned to the algorithm registered
        assert.truthy(webhook.parse(d.body, {}, { scheme = "body", secret = KEY, algorithm = alg }))
        refused(d.body, {}, { scheme = "body", secret = KEY, algorithm = alg == "sha256" and "sha512" or "sha256" },
          401, "takes sha%d+ only")

        -- handled once; the same delivery again (a replay, a retry) is not handled twice
        local calls = {}
        local o = handler({ scheme = "body", secret = KEY }, calls)
        local status, answer, handled = webhook.handle(d.body, d.headers, o)
        assert.same({ 200, true, 1 }, { status, answer.ok, #handled })
        status, answer = webhook.handle(d.body, d.headers, o)
        assert.same({ 200, true }, { status, answer.duplicate })
        -- replayed in a new envelope (another invocation id, fresh timestamps): the signed message's id is the same
        local rewrapped = d.body:gsub('"id":"' .. doc.id:gsub("%-", "%%-") .. '"', '"id":"another-invocation"', 1)
        assert.not_equal(d.body, rewrapped)
        status, answer = webhook.handle(rewrapped, {}, o)
        assert.same({ 200, true }, { status, answer.duplicate })
        assert.equal(1, #calls)
        -- after the seen-set would have forgotten it: its signed createdDate is too old
        refused(d.body, {}, { scheme = "body", secret = KEY, now = function() return os.time() + 2 * 86400 end },
          401, "createdDate is more than 86400 s old")

        -- a tampered message, a wrong key, an unknown algorithm
        refused(d.body:gsub('"610910"', '"620520"', 1), {}, opts, 401, "signature does not match")
        refused(d.body:gsub('"itemCode":"TS%-1"', '"itemCode":"TS-2"', 1), {}, opts, 401, "signature does not match")
        refused(d.body, {}, { scheme = "body", secret = KEY:upper() }, 401, "signature does not match")
        refused(d.body:gsub('"algorithm":"' .. alg .. '"', '"algorithm":"md5"', 1), {}, opts, 401,
          'algorithm "md5" is not one this receiver checks %(sha256, sha512%)')
        refused(d.body:gsub('"type":"hmac"', '"type":"none"', 1), {}, opts, 401, "unsigned message")
      end)
    end

    it("sends the same invocation again on failure, retry_count counting, the message bytes unchanged", function()
      receiver = H.receiver(1)
      register(receiver.url, { type = "hmac", key = KEY, algorithm = "sha512" })
      local second = delivery("R-1", 2)
      local first = receiver.deliveries()[1]
      local cjson = require "cjson"
      local a, b = cjson.decode(first.body), cjson.decode(second.body)
      assert.same({ 500, 200 }, { first.answered, second.answered })
      assert.same({ a.id, 1, 2 }, { b.id, a.retry_count, b.retry_count })
      assert.equal(a.items[1].signature.value, b.items[1].signature.value)
      local calls = {}
      local o = handler({ scheme = "body", secret = KEY }, calls)
      assert.equal(200, (webhook.handle(second.body, {}, o)))
      assert.equal(2, assert(webhook.parse(second.body, {}, { scheme = "body", secret = KEY }))[1].attempt)
      assert.same({ 200, true }, { webhook.handle(first.body, {}, o), select(2, webhook.handle(first.body, {}, o))
        .duplicate })
      assert.equal(1, #calls)
    end)

    it("refuses what the emulator signs with an algorithm it does not check (sha384), naming it", function()
      receiver = H.receiver()
      register(receiver.url, { type = "hmac", key = KEY, algorithm = "sha384" })
      local d = delivery()
      local calls = {}
      local status, answer = webhook.handle(d.body, {}, handler({ scheme = "body", secret = KEY }, calls))
      assert.equal(401, status)
      assert.equal('items[1]\'s signature algorithm "sha384" is not one this receiver checks (sha256, sha512)',
        answer.error)
      assert.equal(0, #calls)
    end)

    it("checks the registration's signature (emulator and client)", function()
      local res = S.api("POST", H.REGISTRATIONS, { json = { connectorName = "shop", url = "http://127.0.0.1:9/h",
        typeName = "Webhook", events = "HSCodeAssigned", signature = { type = "hmac", key = KEY, algorithm = "md5" } } })
      assert.equal(400, res.status)
      assert.equal("signature.algorithm", res.json.error.details[1].refersTo)
      assert.is_nil(res.body:find(KEY, 1, true))
      local client = H.client(S.e)
      local reg = { connectorName = "c", url = "http://127.0.0.1:9/h" }
      for _, case in ipairs {
        { { type = "hmac", key = "short-key", algorithm = "sha256" }, "'signature.key' must be a string of at least 16" },
        { { type = "hmac", key = KEY, algorithm = "sha384" }, "'signature.algorithm' must be \"sha256\" or \"sha512\"" },
        { { type = "none", key = KEY, algorithm = "sha256" }, "'signature.type' must be \"hmac\"" },
      } do
        reg.signature = case[1]
        local ok, err = pcall(client.create_webhook_registration, client, reg)
        assert.is_false(ok)
        assert.truthy(tostring(err):find(case[2], 1, true), tostring(err))
        assert.is_nil(tostring(err):find(KEY, 1, true))
      end
      assert.equal(0, S.api("GET", H.REGISTRATIONS).json["@recordsetCount"])
      reg.signature = { type = "hmac", key = KEY, algorithm = "sha512" }
      local out = assert(client:create_webhook_registration(reg))
      assert.same({ type = "hmac", algorithm = "sha512" }, out.signature)
    end)
  end)

  describe("header (this project's assumption)", function()
    it("accepts a valid delivery once; refuses a tampered body, a wrong key, a replay and an unknown version",
      function()
      receiver = H.receiver()
      local reg = register(receiver.url)
      assert.is_nil(reg.signature)
      local d = delivery()
      local secret = H.client(S.e):webhook_secret(reg.registrationId)
      local opts = { scheme = "header", secret = secret }
      local event = assert(webhook.parse(d.body, d.headers, opts))
      assert.equal("TS-1", event.itemCode)
      -- the body scheme's check refuses a header-scheme delivery, naming the difference
      refused(d.body, d.headers, { scheme = "body", secret = secret }, 400, "WebhookInvocation")

      local calls = {}
      local o = handler({ scheme = "header", secret = secret }, calls)
      assert.equal(200, (webhook.handle(d.body, d.headers, o)))
      local status, answer = webhook.handle(d.body, d.headers, o)
      assert.same({ 200, true }, { status, answer.duplicate })
      assert.equal(1, #calls)
      refused(d.body, d.headers, { scheme = "header", secret = secret, now = function() return os.time() + 3600 end },
        401, "timestamp is too far from now")

      refused(d.body:gsub('"610910"', '"620520"', 1), d.headers, opts, 401, "signature does not match")
      refused(d.body, d.headers, { scheme = "header", secret = ("0"):rep(64) }, 401, "signature does not match")
      local h = {}
      for k, v in pairs(d.headers) do h[k] = v end
      h["x-avalara-signature"] = "v2=" .. h["x-avalara-signature"]:sub(4)
      refused(d.body, h, opts, 401, 'version or algorithm "v2" is not one this receiver checks')
      h["x-avalara-signature"] = "sha512=" .. require("avalara.core").hmac_sha512(secret, "x")
      refused(d.body, h, opts, 401, 'version or algorithm "sha512" is not one this receiver checks')
    end)
  end)
end)
