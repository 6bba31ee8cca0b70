-- The client's Items flow (avalara.items) against the emulator: a token of
-- each scope, items created in chunks, lists through @nextLink, initiate in
-- chunks, waiting, SLA, verify, dismiss and delete, item and premium
-- classifications by encoded item code, webhook registrations, retries and
-- token renewal, and arguments checked before any request.
local H = require "spec.support.items"
local avalara = require "avalara"

local WORDS = { "men's cotton t-shirt", "porcelain coffee mug", "wool sweater", "leather handbag", "wooden chair" }

local function catalog(n, prefix)
  local out = {}
  for i = 1, n do out[i] = { itemCode = (prefix or "SKU-") .. i, description = WORDS[(i - 1) % #WORDS + 1] } end
  return out
end

local function ids_of(models)
  local out = {}
  for i, m in ipairs(models) do out[i] = m.id end
  return out
end

describe("client: the Items flow", function()
  local e

  setup(function() e = H.emu.start() end)
  teardown(function() e:stop() end)
  before_each(function()
    e:reset()
    e:configure { classification_delay = 0.2 }
  end)

  describe("tokens and base URLs", function()
    it("gets a token of each scope, each cached, and one when the scopes are the same", function()
      local scopes = {}
      local c = H.client(e, { on_token = function(i) scopes[#scopes + 1] = i.scope end })
      assert.equal(e.http_url, c.items_base)
      assert.equal("avatax_api", c.items_scope)
      assert(c:create_items(catalog(1)))
      assert(c:sections())
      assert(c:items())
      assert(c:hs_codes("US", "61"))
      table.sort(scopes)
      assert.same({ "avatax_api", "hs-code-classification" }, scopes)
      assert.equal(2, (e:counters().grants.connect_token or {}).client_credentials)
      scopes = {}
      local one = H.client(e, { scope = "avatax_api", on_token = function(i) scopes[#scopes + 1] = i.scope end })
      assert(one:items())
      assert(one:sections())
      assert.same({ "avatax_api" }, scopes)
    end)

    it("takes the environments' AvaTax hosts, an items_base of its own, and checks it at once", function()
      local prod = avalara.new { account_id = "1", license_key = "k", environment = "production" }
      assert.equal("https://rest.avatax.com", prod.items_base)
      local sbx = avalara.new { account_id = "1", license_key = "k", environment = "sandbox", legacy = true }
      assert.equal("https://sandbox-rest.avatax.com", sbx.items_base)
      assert.equal("avatax_api", sbx.items_scope)
      local own = avalara.new { account_id = "1", license_key = "k", items_base = "https://items.example/" }
      assert.equal("https://items.example", own.items_base)
      assert.has_error(function()
        avalara.new { account_id = "1", license_key = "k", items_base = "http://items.example" }
      end)
      assert.has_error(function() avalara.new { account_id = "1", license_key = "k", items_scope = 5 } end)
      -- the Items calls go to items_base; the classification API is not touched
      local c = H.client(e, { items_base = "http://127.0.0.1:1", retries = false })
      local ok, err = c:items()
      assert.is_nil(ok)
      assert.equal("transport", err.kind)
      assert.truthy(c:sections())
    end)

    it("renews its avatax_api token once on BearerTokenInvalid, and retries 5xx", function()
      local c = H.client(e)
      assert(c:items())
      e:request("POST", "/_emulator/tokens/expire")
      e:fault("items_list", "503", 2, { retry_after = 0 })
      local list = assert(c:items())
      assert.same({}, list)
      assert.equal(5, H.route(e, "items_list"))
    end)
  end)

  describe("items", function()
    it("creates in chunks of at most 500, checking every item first #smoke", function()
      local c = H.client(e)
      local models = assert(c:create_items(catalog(120), { chunk = 50 }))
      assert.equal(120, #models)
      assert.equal("SKU-120", models[120].itemCode)
      assert.equal(3, H.route(e, "items_create"))
      assert(c:create_items(catalog(60, "DEF-")))
      assert.equal(5, H.route(e, "items_create")) -- default 50 a request
      local bad = catalog(3, "X-")
      bad[2].description = nil
      assert.has_error(function() c:create_items(bad) end, "client:create_items: items[2]: 'description' is required")
      bad[2].description, bad[3].itemCode = "d", ("x"):rep(51)
      assert.has_error(function() c:create_items(bad) end,
        "client:create_items: items[3]: 'itemCode' is longer than 50 characters (51)")
      assert.has_error(function() c:create_items(catalog(2), { chunk = 501 }) end)
      assert.equal(5, H.route(e, "items_create"))
    end)

    it("keeps what earlier chunks created when a later one fails", function()
      local c = H.client(e)
      assert(c:create_items({ { itemCode = "SKU-4", description = "x" } }))
      local models, err = c:create_items(catalog(5), { chunk = 2 })
      assert.is_nil(models)
      assert.equal("DuplicateEntry", err.code)
      assert.equal(193, err.number)
      assert.equal(2, #err.created)
      assert.equal("SKU-2", err.created[2].itemCode)
    end)

    it("lists every page through @nextLink, lazily too, with the HS filters", function()
      local c = H.client(e)
      local made = assert(c:create_items(catalog(25)))
      local before = H.route(e, "items_list")
      local list, count = assert(c:items { top = 10, order_by = "id desc" })
      assert.equal(25, #list)
      assert.equal(25, count)
      assert.equal("SKU-25", list[1].itemCode)
      assert.equal(before + 3, H.route(e, "items_list"))
      local n = 0
      for it, err in c:each_item { top = 7, filter = "description eq 'wool sweater'" } do
        assert.is_nil(err)
        assert.equal("wool sweater", it.description)
        n = n + 1
      end
      assert.equal(5, n)
      assert(c:initiate_hscode_classification({ made[1].id, made[2].id }, { "US", "DE" }))
      assert(c:initiate_hscode_classification({ made[3].id }, "US"))
      assert(c:wait_hscode_classification(ids_of(made), nil, { interval = 0.05 }))
      local both = assert(c:items { hs_code_exists_in_countries = { "US", "DE" } })
      assert.equal(2, #both)
      local missing = assert(c:items { hs_code_does_not_exist_in_countries = "DE", top = 5 })
      assert.equal(23, #missing)
      local classified = assert(c:items { hs_code_classification_status = "Classified",
        include = { "HsCodeClassificationStatus", "Classifications" } })
      assert.equal(3, #classified)
      assert.equal(2, #classified[1].classifications)
      assert.has_error(function() c:items { hs_code_status = "x" } end)
      assert.has_error(function() c:items { top = 1001 } end)
    end)

    it("reads, updates and deletes an item", function()
      local c = H.client(e)
      local m = assert(c:create_items { { itemCode = "A", description = "mug", parameters = { { name = "weight",
        value = 0.5, unit = "kg" } } } })[1]
      local got = assert(c:item(m.id, { include = "Parameters" }))
      assert.same({ { name = "weight", value = "0.5", unit = "kg" } }, got.parameters)
      local up = assert(c:update_item(m.id, { itemCode = "A", description = "porcelain mug", category = "Kitchen" }))
      assert.equal("porcelain mug", up.description)
      assert.is_true(c:delete_item(m.id))
      local none, err = c:item(m.id)
      assert.is_nil(none)
      assert.equal(404, err.status)
      assert.equal(4, err.number)
      assert.has_error(function() c:item("12") end, "client:item: 'id' must be a positive integer id (got 12)")
    end)
  end)

  describe("HS classification", function()
    it("initiates in chunks for several countries and waits until each is decided", function()
      local c = H.client(e)
      local made = assert(c:create_items(catalog(5)))
      local ids = ids_of(made)
      ids[#ids + 1] = 999999
      local out = assert(c:initiate_hscode_classification(ids, { "us", "DE", "JP" }, { chunk = 2, premium = true }))
      assert.equal(3, H.route(e, "items_initiate"))
      assert.equal(6, out.total)
      assert.equal(1, #out.failed)
      assert.equal(999999, out.failed[1].itemId)
      assert.equal("EntityNotFoundError", out.failed[1].errors[1].code)
      local pending = assert(c:hscode_classification_status(ids[1]))
      assert.equal(3, #pending)
      assert.equal("Pending", pending[1].status)
      table.remove(ids)
      local done = assert(c:wait_hscode_classification(ids, { "US", "DE", "JP" }, { interval = 0.05 }))
      assert.equal(5, #done)
      for i, it in ipairs(done) do
        assert.equal(ids[i], it.id)
        assert.equal(3, #it.hsCodeClassificationStatus)
        for _, s in ipairs(it.hsCodeClassificationStatus) do assert.equal("Classified", s.status) end
      end
      local ks, n = assert(c:item_classifications(ids[2], { top = 1 }))
      assert.equal(3, n)
      assert.equal(3, #ks)
      assert.equal("691110", ks[1].productCode)
      assert.is_true(ks[1].isPremium)
      assert.same(ks[2], assert(c:item_classification(ids[2], ks[2].id)))
    end)

    it("times out with the pairs still pending", function()
      e:configure { classification_delay = 30 }
      local c = H.client(e)
      local m = assert(c:create_items(catalog(1)))[1]
      assert(c:initiate_hscode_classification(m.id, { "US", "DE" }))
      local ok, err = c:wait_hscode_classification({ m.id }, { "US" }, { timeout = 0.3, interval = 0.05 })
      assert.is_nil(ok)
      assert.equal("timeout", err.kind)
      assert.same({ { itemId = m.id, country = "US" } }, err.pending)
    end)

    it("checks its arguments before any request", function()
      local c = H.client(e)
      assert.has_error(function() c:initiate_hscode_classification({}, { "US" }) end)
      assert.has_error(function() c:initiate_hscode_classification({ 1 }, { "USA" }) end,
        "client:initiate_hscode_classification: 'countries[1]' must be a two-letter country code, such as US (got USA)")
      assert.has_error(function() c:initiate_hscode_classification({ 1.5 }, { "US" }) end)
      assert.has_error(function() c:initiate_hscode_classification({ 1 }, { "US" }, { premium = "yes" }) end)
      assert.has_error(function() c:verify_hscodes { { itemId = 1, country = "US", hsCode = 610910 } } end)
      assert.has_error(function() c:dismiss_hscode_classification(1, "U") end)
      local nocompany = avalara.new { account_id = "1", license_key = "k", environment = "local",
        emulator_url = e.http_url }
      assert.has_error(function() nocompany:items() end,
        "client:items: 'company_id' is required (give it to avalara.new or set AVALARA_COMPANY_ID)")
      assert.equal(0, e:counters().requests)
    end)

    it("verifies codes all or nothing, dismisses and deletes statuses, reads the SLA and the definitions", function()
      e:configure { classification_delay = 0 }
      local c = H.client(e)
      local made = assert(c:create_items(catalog(2)))
      local out = assert(c:verify_hscodes { { item_id = made[1].id, country = "us", hs_code = "610910" },
        { itemId = made[2].id, country = "DE", hsCode = "0000" } })
      assert.equal(1, #out.failed)
      assert.equal(1, out.failed[1].rowIndex)
      assert.equal("InvalidHsCode", out.failed[1].errorCode)
      assert.same({}, assert(c:item_classifications(made[1].id)))
      out = assert(c:verify_hscodes { { itemId = made[1].id, country = "US", hsCode = "610910" } })
      assert.same({}, out.failed)
      local status = assert(c:dismiss_hscode_classification(made[1].id, "us"))
      assert.equal("Dismissed", status.status)
      assert.is_true(assert(c:delete_hscode_classification_status(made[1].id, status.id)))
      assert.same({}, assert(c:hscode_classification_status(made[1].id)))
      local _, err = c:delete_hscode_classification_status(made[1].id, status.id)
      assert.equal(404, err.status)
      assert.equal(24, assert(c:hscode_classification_sla()).slaInHours)
      assert.equal("Pending", assert(c:hscode_classification_statuses())[1].name)
      assert.equal("HSCodeAssigned", assert(c:item_events())[1].name)
    end)

    it("reads premium classifications by item code, encoded as published", function()
      e:configure { classification_delay = 0 }
      local c = H.client(e)
      local seen = {}
      local watched = H.client(e, { transport = require("spec.support.client").socket_transport(function(req)
        seen[#seen + 1] = req.url
      end) })
      local code = "MUG/1 +?%#'\""
      local m = assert(c:create_items { { itemCode = code, description = "porcelain coffee mug" } })[1]
      assert(c:initiate_hscode_classification({ m.id }, { "US", "FR" }, { premium = true }))
      assert(c:wait_hscode_classification({ m.id }, nil, { interval = 0.05 }))
      local list = assert(watched:premium_classifications(code))
      assert.equal(2, #list)
      assert.equal(code, list[1].itemCode)
      local fr = assert(watched:premium_classification(code, "TARIC", "fr"))
      assert.equal("FR", fr.country)
      assert.equal("691110", fr.hsCode)
      local path = "/items/MUG_-ava2f-_1%20_-ava2b-__-ava3f-__-ava25-__-ava23-__-ava27-__-ava22-_/premiumClassification"
      assert.truthy(seen[#seen]:find(path .. "/TARIC?country=FR", 1, true), seen[#seen])
      local none, err = c:premium_classification(code, "HTS", "JP")
      assert.is_nil(none)
      assert.equal(404, err.status)
    end)
  end)

  it("runs on a partner connection's token (a 2012 CompanyUser token); no webhook secret without a license key", function()
    local p = avalara.partner.new { client_id = "demo-partner", client_secret = "demo-partner-secret",
      redirect_uri = "http://127.0.0.1:49152/callback", environment = "local", emulator_url = e.http_url,
      flow = "2012", timeout = 5, store = avalara.store.memory() }
    local conn = assert(p:self_grant { company_id = H.COMPANY })
    local c = assert(p:client(conn.id))
    local m = assert(c:create_items(catalog(1)))[1]
    assert(c:initiate_hscode_classification(m.id, { "US" }))
    assert.equal(1, #assert(c:wait_hscode_classification(m.id, nil, { interval = 0.05 })))
    assert.equal(0, (e:counters().grants.connect_token or {}).client_credentials or 0)
    assert.has_error(function() c:webhook_secret(1) end)
  end)

  it("registers webhooks: create, list, read, change, delete", function()
    local c = H.client(e)
    local reg = assert(c:create_webhook_registration { connectorName = "shop", url = "http://127.0.0.1:9/h" })
    assert.equal("Webhook", reg.typeName)
    assert.equal("HSCodeAssigned", reg.events)
    local list, n = assert(c:webhook_registrations())
    assert.equal(1, n)
    assert.equal(reg.registrationId, list[1].registrationId)
    assert.same(reg, assert(c:webhook_registration(reg.registrationId)))
    local changed = assert(c:update_webhook_registration(reg.registrationId, { url = "http://127.0.0.1:9/new" }))
    assert.equal("http://127.0.0.1:9/new", changed.url)
    assert.is_true(assert(c:delete_webhook_registration(reg.registrationId)))
    local _, err = c:webhook_registration(reg.registrationId)
    assert.equal(404, err.status)
    assert.has_error(function() c:create_webhook_registration { url = "http://x/" } end)
    assert.has_error(function() c:update_webhook_registration(1, { connectorName = "other" }) end)
  end)
end)
