-- Webhook registrations (docs/api-contracts.md section 2.7) and the HSCodeAssigned
-- deliveries the emulator really sends, to a receiver process this spec
-- starts on loopback: payload, headers and signature (checked with
-- avalara.webhook, the receiver helper), retries when the receiver fails,
-- nothing for a deleted registration.
local avalara = require "avalara"
local webhook = require "avalara.webhook"
local H = require "spec.support.items"

describe("webhooks", function()
  local S = H.emulator { classification_delay = 0, webhook_retry_delay = 0.2 }
  local api = S.api
  setup(S.start)
  teardown(S.stop)
  before_each(S.reset)
  local receiver
  after_each(function()
    if receiver then receiver.stop(); receiver = nil end
  end)

  local function register(url, extra)
    local body = { connectorName = "shop-connector", url = url, typeName = "Webhook", events = { "HSCodeAssigned" } }
    for k, v in pairs(extra or {}) do body[k] = v end
    return api("POST", H.REGISTRATIONS, { json = body })
  end

  describe("registrations", function()
    it("creates (201), lists, reads, patches and deletes them", function()
      local res = register("http://127.0.0.1:9/hook")
      assert.equal(201, res.status)
      local reg = res.json
      assert.same({ "shop-connector", "http://127.0.0.1:9/hook", 1001, "Webhook", "HSCodeAssigned", true },
        { reg.connectorName, reg.url, reg.companyId, reg.typeName, reg.events, reg.isActive })
      assert.truthy(reg.registrationId > 0)
      assert.truthy(reg.createdDate)
      local id = H.id(reg.registrationId)
      -- events as one value too (the SDKs type it so)
      assert.equal(201, register("http://127.0.0.1:9/other", { events = "HSCodeAssigned" }).status)
      local list = api("GET", H.REGISTRATIONS).json
      assert.equal(2, list["@recordsetCount"])
      assert.is_nil(list["@nextLink"])
      assert.same(reg, api("GET", H.REGISTRATIONS .. "/" .. id).json)
      res = api("PATCH", H.REGISTRATIONS .. "/" .. id, { json = { url = "https://127.0.0.1:9/new" } })
      assert.equal(200, res.status)
      assert.equal("https://127.0.0.1:9/new", res.json.url)
      assert.equal("shop-connector", res.json.connectorName)
      assert.equal("HSCodeAssigned", res.json.events)
      res = api("DELETE", H.REGISTRATIONS .. "/" .. id)
      assert.equal("ObjectDeleted", res.json[1].code)
      assert.equal(404, api("GET", H.REGISTRATIONS .. "/" .. id).status)
      assert.equal(404, api("PATCH", H.REGISTRATIONS .. "/" .. id, { json = { url = "http://x/" } }).status)
      assert.equal(1, api("GET", H.REGISTRATIONS).json["@recordsetCount"])
    end)

    it("checks the model", function()
      local res = api("POST", H.REGISTRATIONS, { json = { url = "ftp://x/", typeName = "Email", events = "Other" } })
      assert.equal(400, res.status)
      local got = {}
      for _, d in ipairs(res.json.error.details) do got[d.refersTo] = d.code end
      assert.same({ connectorName = "ValueRequiredError", url = "IncorrectValueForField", typeName = "InvalidEnumValue",
        events = "InvalidEnumValue" }, got)
      register("http://127.0.0.1:9/hook")
      res = register("http://127.0.0.1:9/hook")
      assert.equal(400, res.status)
      assert.equal("DuplicateEntry", res.json.error.code)
      assert.equal("InvalidEnumValue", api("PATCH", H.REGISTRATIONS .. "/1", { json = { events = { "X" } } })
        .json.error.code)
      assert.equal(403, api("GET", H.REGISTRATIONS, { token = S.e:token() }).status)
    end)
  end)

  it("POSTs one signed HSCodeAssigned event per item with its codes for every country", function()
    receiver = H.receiver()
    local reg = register(receiver.url).json
    local items = S.create({ { itemCode = "TS/1", description = "men's cotton t-shirt" },
      { itemCode = "MUG-2", description = "porcelain coffee mug" } })
    assert.equal(200, S.initiate({ items[1].id, items[2].id }, { "US", "DE", "JP" }).status)
    local got = H.eventually(function()
      local d = receiver.deliveries()
      return #d >= 2 and d
    end)
    assert.truthy(got, "two deliveries")
    local secret = H.client(S.e):webhook_secret(reg.registrationId)
    assert.equal(webhook.secret(H.KEY, reg.registrationId), secret)
    local seen = {}
    for _, d in ipairs(got) do
      assert.equal("/hooks/avalara", d.path)
      assert.equal("application/json", d.headers["content-type"])
      assert.equal("HSCodeAssigned", d.headers["x-avalara-event"])
      assert.equal("1", d.headers["x-avalara-delivery-attempt"])
      local event = assert(webhook.parse(d.body, d.headers, { secret = secret }))
      assert.equal(d.headers["x-avalara-event-id"], event.id)
      assert.equal("HSCodeAssigned", event.eventType)
      assert.equal(reg.registrationId, event.registrationId)
      assert.equal("shop-connector", event.connectorName)
      assert.equal(1001, event.companyId)
      assert.equal(3, #event.classifications)
      seen[event.itemCode] = event
      for _, k in ipairs(event.classifications) do
        assert.equal(event.itemId, k.itemId)
        assert.truthy(k.productCode:match("^%d%d%d%d%d%d$"))
      end
      -- another secret, a changed body, an old timestamp: refused
      local _, err = webhook.parse(d.body, d.headers, { secret = ("0"):rep(64) })
      assert.equal(401, err.status)
      _, err = webhook.parse(d.body:gsub("HSCodeAssigned", "HSCodeAssignee", 1), d.headers, { secret = secret })
      assert.equal(401, err.status)
      _, err = webhook.parse(d.body, d.headers, { secret = secret, now = function() return os.time() + 3600 end })
      assert.equal(401, err.status)
      assert.truthy(err.message:find("timestamp", 1, true))
    end
    assert.truthy(seen["TS/1"] and seen["MUG-2"])
    local us
    for _, k in ipairs(seen["TS/1"].classifications) do if k.country == "US" then us = k end end
    assert.same({ "610910", "HTS" }, { us.productCode, us.systemCode })
    -- the same as the item's classifications
    local k = api("GET", H.ITEMS .. "/" .. H.id(items[1].id) .. "/classifications/" .. H.id(us.id)).json
    assert.equal(us.productCode, k.productCode)
    local c = S.e:counters()
    assert.equal(2, c.webhooks.delivered)
    assert.equal(2, c.webhooks.attempts)
  end)

  it("sends a failed delivery again, the same event, until the receiver takes it", function()
    receiver = H.receiver(2)
    register(receiver.url)
    local item = S.create({ { itemCode = "A", description = "wool sweater" } })[1]
    S.initiate({ item.id }, { "FR" })
    local got = H.eventually(function()
      local d = receiver.deliveries()
      return #d >= 3 and d
    end, 15)
    assert.truthy(got, "three attempts")
    assert.same({ 500, 500, 200 }, { got[1].answered, got[2].answered, got[3].answered })
    assert.same({ "1", "2", "3" }, { got[1].headers["x-avalara-delivery-attempt"],
      got[2].headers["x-avalara-delivery-attempt"], got[3].headers["x-avalara-delivery-attempt"] })
    assert.equal(got[1].headers["x-avalara-event-id"], got[3].headers["x-avalara-event-id"])
    assert.equal(got[1].body, got[3].body)
    local log = S.e:request("GET", "/_emulator/webhooks").json.deliveries
    assert.same({ false, false, true }, { log[1].delivered, log[2].delivered, log[3].delivered })
    local c = S.e:counters()
    assert.same({ attempts = 3, retries = 2, delivered = 1 }, c.webhooks)
  end)

  it("gives up after webhook_attempts, and sends nothing for a deleted registration", function()
    S.e:configure { webhook_attempts = 2, webhook_retry_delay = 0.1 }
    local reg = register("http://127.0.0.1:1/nobody").json
    local item = S.create({ { itemCode = "A", description = "wool sweater" } })[1]
    S.initiate({ item.id }, { "FR" })
    assert.truthy(H.eventually(function() return (S.e:counters().webhooks.failed or 0) == 1 end, 10))
    local log = S.e:request("GET", "/_emulator/webhooks").json.deliveries
    assert.equal(2, #log)
    assert.truthy(log[1].error:find("connect", 1, true))
    api("DELETE", H.REGISTRATIONS .. "/" .. H.id(reg.registrationId))
    receiver = H.receiver()
    S.initiate({ item.id }, { "DE" })
    assert.truthy(H.eventually(function()
      return item and api("GET", H.ITEMS .. "/" .. H.id(item.id) .. "/classifications").json["@recordsetCount"] == 2
    end))
    require("socket").sleep(0.3)
    assert.equal(0, #receiver.deliveries())
    assert.equal(2, S.e:counters().webhooks.attempts)
  end)

  it("publishes verified codes too", function()
    receiver = H.receiver()
    local reg = register(receiver.url).json
    local item = S.create({ { itemCode = "A", description = "mug" } })[1]
    assert.equal(200, api("POST", H.ITEMS .. "/hscodes/$verify", { json = {
      { itemId = item.id, country = "US", hsCode = "691200" } } }).status)
    local got = H.eventually(function() return receiver.deliveries()[1] end)
    local event = assert(webhook.parse(got.body, got.headers, { secret = webhook.secret(H.KEY, reg.registrationId) }))
    assert.equal("HSCodeVerified", event.classifications[1].classificationEvent)
    assert.equal("691200", event.classifications[1].productCode)
  end)
end)

describe("avalara.webhook", function()
  local body = '{"id":"e1","eventType":"HSCodeAssigned","itemId":5,"itemCode":"A","classifications":'
    .. '[{"productCode":"610910","country":"US","systemCode":"HTS"}]}'
  local secret = ("s"):rep(64)

  local function headers(ts, b)
    return { ["X-Avalara-Timestamp"] = tostring(ts), ["X-Avalara-Signature"] = webhook.sign(secret, ts, b or body),
      ["X-Avalara-Event"] = "HSCodeAssigned", ["X-Avalara-Delivery-Attempt"] = "2" }
  end

  it("parses a signed delivery, headers in any case", function()
    local event = assert(webhook.parse(body, headers(os.time()), { secret = secret }))
    assert.equal("e1", event.id)
    assert.equal(2, event.attempt)
    assert.equal("610910", event.classifications[1].productCode)
  end)

  it("refuses what does not check, with the status to answer", function()
    local function err_of(b, h, o)
      local ev, err = webhook.parse(b, h, o or { secret = secret })
      assert.is_nil(ev)
      return err.status, err.message
    end
    local h = headers(os.time())
    h["X-Avalara-Signature"] = nil
    assert.equal(401, err_of(body, h))
    assert.equal(401, err_of(body, { ["X-Avalara-Signature"] = webhook.sign(secret, os.time(), body) }))
    assert.equal(401, err_of(body, headers(os.time() - 301)))
    assert.equal(400, err_of("[]", headers(os.time(), "[]")))
    local other = body:gsub("HSCodeAssigned", "Other")
    assert.equal(400, err_of(other, headers(os.time(), other)))
    local no_codes = body:gsub('"country":"US",', "")
    assert.equal(400, err_of(no_codes, headers(os.time(), no_codes)))
    local h2 = headers(os.time())
    h2["X-Avalara-Event"] = "Other"
    assert.equal(400, err_of(body, h2))
    -- a check of one's own replaces the signature
    assert.equal(401, err_of(body, {}, { verify = function() return nil, "no" end }))
    assert.truthy(webhook.parse(body, {}, { verify = function() return true end }))
    -- no secret: nothing accepted (500: the receiver's configuration), wrong options raise
    assert.equal(500, err_of(body, headers(os.time()), {}))
    assert.has_error(function() webhook.parse(body, {}) end)
    assert.has_error(function() webhook.parse(body, {}, { verify = "yes" }) end)
  end)

  it("derives the signing secret from the license key, never showing the key", function()
    local c = avalara.new { account_id = "1", license_key = "LICENSE-KEY-X", company_id = 1, environment = "sandbox" }
    local s = c:webhook_secret(7)
    assert.equal(64, #s)
    assert.equal(webhook.secret("LICENSE-KEY-X", 7), s)
    assert.not_equal(s, c:webhook_secret(8))
    assert.is_nil(s:find("LICENSE", 1, true))
  end)
end)
