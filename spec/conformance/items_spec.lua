-- The Items flow's published models (spec/conformance/fixtures: item_*.json,
-- initiate_output.json, sla.json, verify_*.json, premium_classification.json,
-- registration.json, *_definitions.json, object_deleted.json): the emulator
-- answers in their shapes, and the client reads their exact bytes from a
-- tiny nginx fixture server, types kept (a row's itemId stays a string,
-- ids stay integers, `events` one value).
local avalara = require "avalara"
local emu = require "spec.support.emulator"
local C = require "spec.support.contract"

local ITEMS = "/api/v2/companies/3402/items"
local REGISTRATIONS = "/api/v2/connector-sync/companies/3402/registrations"

local function example(name)
  return (select(2, C.fixture(name)))
end

local function id(v)
  return string.format("%d", v)
end

describe("contract: the emulator sends the Items flow's published shapes", function()
  local e, token

  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function()
    C.reset(e)
    token = e:token("avatax_api")
  end)

  local function api(method, path, body, raw)
    local headers = { authorization = "Bearer " .. token }
    if raw then headers["content-type"] = "application/json" end
    return assert(e:request(method, path, { headers = headers, json = not raw and body or nil, body = raw }))
  end

  local function until_decided(item_id)
    for _ = 1, 100 do
      local item = api("GET", ITEMS .. "/" .. id(item_id) .. "?$include=HsCodeClassificationStatus").json
      local s = item.hsCodeClassificationStatus
      if s[1] and s[1].status ~= "Pending" then return end
      require("socket").sleep(0.05)
    end
    error("still pending")
  end

  it("items: the published minimal create, and the item with its classifications and statuses", function()
    local text = C.fixture("item_create_minimal.json")
    local res = api("POST", ITEMS, nil, text)
    assert.equal(200, res.status)
    local created = C.without(example("item_oa21.json"), "classifications", "hsCodeClassificationStatus", "taxCode",
      "category")
    assert.same({}, C.conform(res.json, { created }, "AvaTaxItemModel[]"))
    local full = example("item_oa21.json")
    local m = api("POST", ITEMS, { { id = 0, itemCode = "CERMUG2", description = "Ceramic Mug",
      taxCode = full.taxCode, category = full.category } }).json[1]
    api("POST", ITEMS .. "/$initiate-hscode-classification", { { itemId = m.id, countryOfDestinations = { "DE" },
      isCompliance = false } })
    until_decided(m.id)
    local got = api("GET", ITEMS .. "/" .. id(m.id) .. "?$include=Classifications,HsCodeClassificationStatus").json
    assert.same({}, C.conform(got, full, "AvaTaxItemModel"))
    local page = api("GET", ITEMS .. "?$include=Classifications,HsCodeClassificationStatus&$top=1&$orderBy=id%20desc").json
    assert.same({}, C.conform(page, example("items_page.json"), "ItemFetchResult"))
    local list = api("GET", ITEMS .. "/" .. id(m.id) .. "/classifications").json
    assert.same({}, C.conform(list, example("item_classifications_oa21.json"), "ItemClassificationFetchResult"))
    local deleted = api("DELETE", ITEMS .. "/" .. id(m.id)).json
    assert.same({}, C.conform(deleted, example("object_deleted.json"), "ObjectDeletedErrorModel[]"))
    assert.equal("The entity was marked as deleted.", deleted[1].message)
    local missing = api("GET", ITEMS .. "/" .. id(m.id))
    assert.equal(404, missing.status)
    assert.same({}, C.conform(missing.json, example("error_entity_not_found.json"), "ErrorResult"))
  end)

  it("initiate, SLA, verify, premium classifications, definitions", function()
    local m = api("POST", ITEMS, { { id = 0, itemCode = "CERMUG", description = "porcelain coffee mug" } }).json[1]
    local out = api("POST", ITEMS .. "/$initiate-hscode-classification", {
      { itemId = m.id, countryOfDestinations = { "US" }, isCompliance = false, isPremiumClassification = true },
      { itemId = 56790, countryOfDestinations = { "US" }, isCompliance = false } }).json
    assert.same({}, C.conform(out, example("initiate_output.json"), "ItemHSCodeClassificationOutputModel"))
    until_decided(m.id)
    assert.same({}, C.conform(api("GET", ITEMS .. "/hscode-classification/$get-sla").json, example("sla.json"),
      "ItemHSCodeClassificationSlaOutputModel"))
    local failed = api("POST", ITEMS .. "/hscodes/$verify", { { itemId = m.id, country = "DE", hsCode = "691110" },
      { itemId = m.id, country = "FR", hsCode = "12" } }).json
    assert.same({}, C.conform(failed, example("verify_failed.json"), "ItemHSCodeVerificationOutputModel"))
    local accepted = api("POST", ITEMS .. "/hscodes/$verify", { { itemId = m.id, country = "DE", hsCode = "691110" } })
    assert.same({}, C.conform(accepted.json, example("verify_accepted.json"), "ItemHSCodeVerificationOutputModel"))
    assert.truthy(accepted.body:find('"failed":[]', 1, true))
    local premium = api("GET", ITEMS .. "/CERMUG/premiumClassification/HTS").json
    assert.same({}, C.conform(premium, example("premium_classification.json"), "ItemPremiumClassificationOutputModel"))
    local premiums = api("GET", ITEMS .. "/CERMUG/premiumClassifications").json
    assert.same({}, C.conform(premiums, { ["@recordsetCount"] = 1, value = { example("premium_classification.json") } },
      "PremiumClassificationFetchResult"))
    assert.same({}, C.conform(api("GET", "/api/v2/definitions/items/hscode-classification-status").json,
      example("status_definitions.json"), "ItemHSCodeClassificationStatusOutputModel[]"))
    assert.same({}, C.conform(api("GET", "/api/v2/definitions/items/events").json, example("event_definitions.json"),
      "ItemReverseSyncEventDefinitionOutputModel[]"))
  end)

  it("webhook registrations", function()
    local want = example("registration.json")
    local res = api("POST", REGISTRATIONS, { connectorName = want.connectorName, url = want.url,
      typeName = want.typeName, events = want.events })
    assert.equal(201, res.status)
    assert.same({}, C.conform(res.json, want, "ItemReverseSyncRegistrationOutputModel"))
    assert.same({}, C.conform(api("GET", REGISTRATIONS).json, { ["@recordsetCount"] = 1, value = { want } },
      "RegistrationFetchResult"))
  end)
end)

-- path -> {status, fixture file} (C.fixture_server; any method)
local ROUTES = {
  [ITEMS] = { 200, "items_created.json" },
  ["/api/v2/companies/3403/items"] = { 200, "items_page.json" },
  [ITEMS .. "/56789"] = { 200, "item_oa21.json" },
  [ITEMS .. "/1"] = { 200, "object_deleted.json" },
  [ITEMS .. "/2"] = { 404, "error_entity_not_found.json" },
  [ITEMS .. "/56789/classifications"] = { 200, "item_classifications_oa21.json" },
  [ITEMS .. "/$initiate-hscode-classification"] = { 200, "initiate_output.json" },
  [ITEMS .. "/hscode-classification/$get-sla"] = { 200, "sla.json" },
  [ITEMS .. "/hscodes/$verify"] = { 200, "verify_failed.json" },
  [ITEMS .. "/CERMUG/premiumClassification/HTS"] = { 200, "premium_classification.json" },
  [REGISTRATIONS .. "/1"] = { 200, "registration.json" },
  ["/api/v2/definitions/items/hscode-classification-status"] = { 200, "status_definitions.json" },
  ["/api/v2/definitions/items/events"] = { 200, "event_definitions.json" },
}

describe("contract: the client reads the Items flow's published payloads", function()
  local server, sent

  setup(function() server = C.fixture_server(ROUTES) end)
  teardown(function() if server then server:stop() end end)

  local function client(company)
    sent = {}
    return avalara.new { environment = "local", emulator_url = server.url, account_id = "2000000001",
      license_key = "DEMO-LICENSE-KEY-0001", company_id = company or 3402, timeout = 5, retries = false,
      transport = require("spec.support.client").socket_transport(function(req) sent[#sent + 1] = req end) }
  end

  it("sends the published minimal create, and reads the items back as sent", function()
    local c = client()
    local created = assert(c:create_items { { itemCode = "CERMUG", description = "Ceramic Mug" } })
    local body = require("cjson").decode(sent[#sent].body)
    assert.same({}, C.conform(body, example("item_create_minimal.json"), "AvaTaxItemModel[]"))
    assert.same(example("item_create_minimal.json"), body)
    assert.same(example("items_created.json"), created)
    local item = assert(c:item(56789, { include = { "Classifications", "HsCodeClassificationStatus" } }))
    assert.same(example("item_oa21.json"), item)
    assert.equal(56789, item.id)
    assert.equal(item.id, math.floor(item.id))
    local list, count = assert(client(3403):items())
    assert.equal(1, count)
    assert.same(example("items_page.json").value, list)
    assert.is_true(assert(c:delete_item(1)))
    local none, err = c:item(2)
    assert.is_nil(none)
    assert.same({ 404, "EntityNotFoundError", 4 }, { err.status, err.code, err.number })
  end)

  it("reads the classifications, the initiate result, the SLA and verify's failed rows", function()
    local c = client()
    local ks, n = assert(c:item_classifications(56789))
    assert.equal(1, n)
    assert.same(example("item_classifications_oa21.json").value, ks)
    assert.equal("001048015838", ks[1].productCode)
    local out = assert(c:initiate_hscode_classification({ 56789, 56790 }, { "DE" }))
    assert.same(example("initiate_output.json"), out)
    assert.equal(24, assert(c:hscode_classification_sla()).slaInHours)
    local v = assert(c:verify_hscodes { { itemId = 56789, country = "US", hsCode = "610910" } })
    assert.same(example("verify_failed.json"), v)
    assert.equal("56789", v.failed[1].itemId)
    assert.equal(1, v.failed[1].rowIndex)
  end)

  it("reads a premium classification, a registration and the definitions", function()
    local c = client()
    assert.same(example("premium_classification.json"), assert(c:premium_classification("CERMUG", "HTS")))
    local reg = assert(c:webhook_registration(1))
    assert.same(example("registration.json"), reg)
    assert.equal("HSCodeAssigned", reg.events)
    assert.same(example("status_definitions.json"), assert(c:hscode_classification_statuses()))
    assert.same(example("event_definitions.json"), assert(c:item_events()))
  end)

  it("every Items fixture keeps to its published model", function()
    for name, model in pairs { ["item_create_minimal.json"] = "AvaTaxItemModel[]", ["item_oa21.json"] = "AvaTaxItemModel",
      ["items_created.json"] = "AvaTaxItemModel[]", ["items_page.json"] = "ItemFetchResult",
      ["item_classifications_oa21.json"] = "ItemClassificationFetchResult",
      ["initiate_output.json"] = "ItemHSCodeClassificationOutputModel", ["sla.json"] = "ItemHSCodeClassificationSlaOutputModel",
      ["verify_failed.json"] = "ItemHSCodeVerificationOutputModel",
      ["verify_accepted.json"] = "ItemHSCodeVerificationOutputModel",
      ["premium_classification.json"] = "ItemPremiumClassificationOutputModel",
      ["registration.json"] = "ItemReverseSyncRegistrationOutputModel",
      ["status_definitions.json"] = "ItemHSCodeClassificationStatusOutputModel[]",
      ["event_definitions.json"] = "ItemReverseSyncEventDefinitionOutputModel[]",
      ["object_deleted.json"] = "ObjectDeletedErrorModel[]" } do
      local _, value = C.fixture(name)
      assert.same({}, C.conform(value, value, model), name)
    end
    -- the checks can fail: a field outside the model, a wrong type
    local bad = example("verify_failed.json")
    bad.failed[1].itemId = 56789
    bad.failed[1].extra = true
    assert.same({ "ItemHSCodeVerificationOutputModel.failed[1].extra: not a field of the published "
      .. "ItemHSCodeVerificationFailedRowModel", "ItemHSCodeVerificationOutputModel.failed[1].itemId: integer, the "
      .. "published example has string" }, C.conform(bad, example("verify_failed.json"), "ItemHSCodeVerificationOutputModel"))
  end)
end)
