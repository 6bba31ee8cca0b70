-- The emulator's HS classification flow over HTTP (docs/api-contracts.md sections
-- 2.2, 2.3, 2.5, 3.2 to 3.9): initiate with per-item failures, statuses from
-- Pending to decided after the delay (without any read), item and premium
-- classifications per country, dismiss, delete, SLA, verify (all or
-- nothing), the definitions, and the sandbox quota.
local H = require "spec.support.items"
local socket = require "socket"

describe("emulator: HS classification of items", function()
  local S = H.emulator { classification_delay = 0.3 }
  local api = S.api
  setup(S.start)
  teardown(S.stop)
  before_each(S.reset)

  local function item(id, include)
    return api("GET", H.ITEMS .. "/" .. H.id(id) .. "?$include=" .. (include or "HsCodeClassificationStatus")).json
  end

  local function by_country(list)
    local out = {}
    for _, s in ipairs(list or {}) do out[s.country] = s end
    return out
  end

  it("initiates for several countries: Pending, then Classified with a code per country, without a read", function()
    local m = S.create({ { itemCode = "TS-1", description = "men's cotton t-shirt" } })[1]
    local res = S.initiate({ m.id }, { "US", "de", "JP" })
    assert.equal(200, res.status)
    assert.same({ total = 1, failed = {} }, res.json)
    assert.truthy(res.body:find('"failed":[]', 1, true))
    local s = by_country(item(m.id).hsCodeClassificationStatus)
    assert.equal("Pending", s.US.status)
    assert.equal("Pending", s.DE.status)
    assert.equal("string", type(s.US.id))
    assert.equal(m.id, s.US.itemId)
    assert.equal(1001, s.US.companyId)
    assert.is_nil(s.US.completedAt)
    socket.sleep(0.6) -- the worker's timer resolves it; the read below only reads
    local gets = H.route(S.e, "items_get")
    s = by_country(item(m.id, "HsCodeClassificationStatus,Classifications").hsCodeClassificationStatus)
    assert.equal(gets + 1, H.route(S.e, "items_get"))
    for _, cc in ipairs { "US", "DE", "JP" } do
      assert.equal("Classified", s[cc].status)
      assert.truthy(s[cc].completedAt)
    end
    local list = api("GET", H.ITEMS .. "/" .. H.id(m.id) .. "/classifications").json
    assert.equal(3, list["@recordsetCount"])
    local k = by_country(list.value)
    assert.same({ "610910", "HTS", 2, false, "HSCodeAssigned" },
      { k.US.productCode, k.US.systemCode, k.US.systemId, k.US.isPremium, k.US.classificationEvent })
    assert.equal("TARIC", k.DE.systemCode)
    assert.equal("HS", k.JP.systemCode)
    assert.equal(m.id, k.JP.itemId)
    local one = api("GET", H.ITEMS .. "/" .. H.id(m.id) .. "/classifications/" .. H.id(k.DE.id))
    assert.equal(200, one.status)
    assert.same(k.DE, one.json)
    assert.equal(404, api("GET", H.ITEMS .. "/" .. H.id(m.id) .. "/classifications/999999").status)
  end)

  it("pages and filters an item's classifications as published", function()
    S.e:configure { classification_delay = 0 }
    local m = S.create({ { itemCode = "A", description = "wool sweater" } })[1]
    S.initiate({ m.id }, { "US", "DE", "FR" })
    local base = H.ITEMS .. "/" .. H.id(m.id) .. "/classifications"
    local page = H.eventually(function()
      local p = api("GET", base .. "?$top=2").json
      return p["@recordsetCount"] == 3 and p
    end)
    assert.equal(2, #page.value)
    assert.equal(base .. "?%24skip=2&%24top=2", page["@nextLink"])
    assert.equal(1, #api("GET", page["@nextLink"]).json.value)
    local res = api("GET", base .. "?$filter=" .. H.emu.percent_encode("country eq 'US'"))
    assert.equal(400, res.status)
    assert.equal("FieldNotQueryableError", res.json.error.code)
  end)

  it("reports the items that cannot start, per item, and starts the others", function()
    local m = S.create({ { itemCode = "A", description = "mug" }, { itemCode = "B", description = "mug" } })
    local res = api("POST", H.ITEMS .. "/$initiate-hscode-classification", { json = {
      { itemId = m[1].id, countryOfDestinations = { "US" }, isCompliance = false },
      { itemId = 999999, countryOfDestinations = { "US" }, isCompliance = false },
      { itemId = m[2].id, countryOfDestinations = { "US", "ZZ" }, isCompliance = false },
      { itemId = m[2].id, countryOfDestinations = { "US" } },
      { itemId = m[1].id, countryOfDestinations = { "US" }, isCompliance = true },
      { countryOfDestinations = { "US" }, isCompliance = false },
      { itemId = m[2].id, countryOfDestinations = {}, isCompliance = false },
    } })
    assert.equal(200, res.status)
    assert.equal(7, res.json.total)
    local got = {}
    for _, f in ipairs(res.json.failed) do
      got[#got + 1] = tostring(f.itemId) .. " " .. f.errors[1].code .. " " .. f.errors[1].target
      assert.equal("Client", f.errors[1].faultCode)
      assert.equal("string", type(f.errors[1].message))
    end
    local a, b = H.id(m[1].id), H.id(m[2].id)
    assert.same({ "999999 EntityNotFoundError [1].itemId", b .. " InvalidCountry [2].countryOfDestinations[1]",
      b .. " ValueRequiredError [3].isCompliance", a .. " DuplicateEntry [4].itemId",
      "nil ValueRequiredError [5].itemId", b .. " ValueRequiredError [6].countryOfDestinations" },
      (function() for i, v in ipairs(got) do got[i] = v:gsub("%.0 ", " ", 1) end return got end)())
    assert.equal("Pending", by_country(item(m[1].id).hsCodeClassificationStatus).US.status)
    assert.is_nil(item(m[2].id).hsCodeClassificationStatus[1])
    -- again while pending: RequestAlreadyInProgress (4030)
    local again = S.initiate({ m[1].id }, { "US" })
    assert.equal("RequestAlreadyInProgress", again.json.failed[1].errors[1].code)
  end)

  it("answers a request that is empty, not an array, or too large", function()
    local res = api("POST", H.ITEMS .. "/$initiate-hscode-classification", { json = {} })
    assert.equal(400, res.status)
    assert.equal(1736, res.json.error.details[1].number)
    res = api("POST", H.ITEMS .. "/%24initiate-hscode-classification", { json = { itemId = 1 } })
    assert.equal(400, res.status)
    assert.equal("ModelRequiredException", res.json.error.code)
    local body = {}
    for i = 1, 501 do body[i] = { itemId = i, countryOfDestinations = { "US" }, isCompliance = false } end
    assert.equal("EntityLimitExceeded", api("POST", H.ITEMS .. "/$initiate-hscode-classification",
      { json = body }).json.error.code)
  end)

  it("gives CannotBeClassified with details when the description says too little", function()
    S.e:configure { classification_delay = 0 }
    local m = S.create({ { itemCode = "Z", description = "zzqx" } })[1]
    S.initiate({ m.id }, { "US" })
    local s = H.eventually(function()
      local st = by_country(item(m.id).hsCodeClassificationStatus).US
      return st.status ~= "Pending" and st
    end)
    assert.equal("CannotBeClassified", s.status)
    assert.equal("Not enough details.", s.details)
    assert.equal(0, api("GET", H.ITEMS .. "/" .. H.id(m.id) .. "/classifications").json["@recordsetCount"])
  end)

  it("keeps premium classifications, read by item code encoded as published", function()
    S.e:configure { classification_delay = 0 }
    local code = "MUG/7+A?B%C#D'E\"F G"
    local m = S.create({ { itemCode = code, description = "porcelain coffee mug" } })[1]
    S.initiate({ m.id }, { "US", "DE", "FR" }, { isPremiumClassification = true })
    local encoded = "MUG_-ava2f-_7_-ava2b-_A_-ava3f-_B_-ava25-_C_-ava23-_D_-ava27-_E_-ava22-_F%20G"
    local list = H.eventually(function()
      local r = api("GET", H.ITEMS .. "/" .. encoded .. "/premiumClassifications").json
      return r["@recordsetCount"] == 3 and r
    end)
    assert.truthy(list, "three premium classifications")
    local p = list.value[1]
    assert.equal(code, p.itemCode)
    assert.equal("string", type(p.id))
    assert.equal("691110", p.hsCode)
    assert.truthy(p.justification:find("porcelain coffee mug", 1, true))
    assert.equal(1001, p.companyId)
    -- the singular route: by system, and by country where the system is shared
    local us = api("GET", H.ITEMS .. "/" .. encoded .. "/premiumClassification/HTS")
    assert.equal(200, us.status)
    assert.equal("US", us.json.country)
    local fr = api("GET", H.ITEMS .. "/" .. encoded .. "/premiumClassification/TARIC?country=FR")
    assert.equal("FR", fr.json.country)
    assert.equal(404, api("GET", H.ITEMS .. "/" .. encoded .. "/premiumClassification/TARIC?country=JP").status)
    -- percent-encoding alone works too
    assert.equal(200, api("GET", H.ITEMS .. "/" .. H.emu.percent_encode(code) .. "/premiumClassification/HTS").status)
    assert.equal(404, api("GET", H.ITEMS .. "/NOPE/premiumClassifications").status)
    -- and the item classifications say so
    local k = api("GET", H.ITEMS .. "/" .. H.id(m.id) .. "/classifications").json.value[1]
    assert.is_true(k.isPremium)
  end)

  it("dismisses a decided status, not a pending one; deletes a status (cancelling a pending one)", function()
    local m = S.create({ { itemCode = "A", description = "mug" }, { itemCode = "B", description = "wool sweater" } })
    S.initiate({ m[1].id }, { "US", "DE" })
    local dismiss = H.ITEMS .. "/" .. H.id(m[1].id) .. "/hscode-classifications-status/$dismiss"
    local res = api("PUT", dismiss .. "?country=US")
    assert.equal(400, res.status)
    assert.equal(3009, res.json.error.details[1].number)
    assert.equal(404, api("PUT", dismiss .. "?country=JP").status)
    assert.equal("ValueRequiredError", api("PUT", dismiss).json.error.code)
    assert.equal("InvalidCountry", api("PUT", dismiss .. "?country=ZZ").json.error.code)
    -- a pending status deleted: its classification never comes
    local de = by_country(item(m[1].id).hsCodeClassificationStatus).DE
    res = api("DELETE", H.ITEMS .. "/" .. H.id(m[1].id) .. "/hscode-classifications-status/" .. de.id)
    assert.equal(204, res.status)
    assert.equal("", res.body)
    assert.equal(404, api("DELETE", H.ITEMS .. "/" .. H.id(m[1].id) .. "/hscode-classifications-status/" .. de.id)
      .status)
    socket.sleep(0.6)
    local after = item(m[1].id, "HsCodeClassificationStatus,Classifications")
    assert.is_nil(by_country(after.hsCodeClassificationStatus).DE)
    assert.equal(1, #after.classifications)
    res = api("PUT", H.ITEMS .. "/" .. H.id(m[1].id) .. "/hscode-classifications-status/%24dismiss?country=us")
    assert.equal(200, res.status)
    assert.equal("Dismissed", res.json.status)
    assert.equal("US", res.json.country)
    assert.equal(m[1].id, res.json.itemId)
    -- the code stays; dismissing again changes nothing
    assert.equal(1, #item(m[1].id, "Classifications").classifications)
    assert.equal(res.json.modifiedAt, api("PUT", dismiss .. "?country=US").json.modifiedAt)
  end)

  it("publishes the SLA and the status definitions", function()
    local res = api("GET", H.ITEMS .. "/hscode-classification/$get-sla")
    assert.same({ slaInHours = 24 }, res.json)
    S.e:configure { hscode_sla_hours = 48 }
    assert.equal(48, api("GET", H.ITEMS .. "/hscode-classification/$get-sla").json.slaInHours)
    local defs = api("GET", "/api/v2/definitions/items/hscode-classification-status").json
    local names = {}
    for i, d in ipairs(defs) do
      names[i] = d.name
      assert.equal("string", type(d.description))
    end
    assert.same({ "Pending", "Classified", "CannotBeClassified", "Dismissed" }, names)
    local events = api("GET", "/api/v2/definitions/items/events").json
    assert.same({ id = 1, name = "HSCodeAssigned" }, { id = events[1].id, name = events[1].name })
  end)

  describe("verify", function()
    local m
    before_each(function()
      m = S.create({ { itemCode = "A", description = "mug" }, { itemCode = "B", description = "mug" } })
    end)

    local function verify(rows)
      return api("POST", H.ITEMS .. "/hscodes/$verify", { json = rows })
    end

    it("keeps every code when every row passes", function()
      local res = verify { { itemId = m[1].id, country = "US", hsCode = "6912001000" },
        { itemId = m[1].id, country = "de", hsCode = "691200" }, { itemId = m[2].id, country = "JP", hsCode = "691110" } }
      assert.equal(200, res.status)
      assert.same({ total = 3, failed = {} }, res.json)
      local a = item(m[1].id, "HsCodeClassificationStatus,Classifications")
      local k = by_country(a.classifications)
      assert.equal("6912001000", k.US.productCode)
      assert.equal("TARIC", k.DE.systemCode)
      assert.equal("Classified", by_country(a.hsCodeClassificationStatus).DE.status)
      local out = api("GET", H.ITEMS .. "/" .. H.id(m[2].id) .. "/classifications").json.value[1]
      assert.equal("HSCodeVerified", out.classificationEvent)
    end)

    it("keeps nothing when a row fails, and lists every failing row", function()
      S.initiate({ m[2].id }, { "FR" })
      local res = verify { { itemId = m[1].id, country = "US", hsCode = "691200" },
        { itemId = m[1].id, country = "US", hsCode = "691110" },
        { itemId = 999999, country = "ZZ", hsCode = "12" },
        { itemId = m[2].id, country = "FR", hsCode = "691200" },
        { itemId = m[1].id, country = "DE", hsCode = "010099" },
        { country = "DE" } }
      assert.equal(200, res.status)
      assert.equal(6, res.json.total)
      local got = {}
      for _, f in ipairs(res.json.failed) do
        got[#got + 1] = H.id(f.rowIndex) .. " " .. tostring(f.itemId) .. " " .. f.errorCode .. " " .. #f.errors
        assert.equal("string", type(f.errors[1]))
      end
      assert.same({ "1 " .. H.id(m[1].id) .. " DuplicateSystemAndCountryForItem 1",
        "2 999999 EntityNotFoundError 3", "3 " .. H.id(m[2].id) .. " InvalidStatusForHSVerification 1",
        "4 " .. H.id(m[1].id) .. " CannotVerifyHSCode 1", "5 nil ValueRequiredError 2" }, got)
      assert.equal("string", type(res.json.failed[1].itemId))
      assert.same({}, item(m[1].id, "Classifications").classifications)
    end)

    it("answers a body that is not a non-empty array", function()
      assert.equal("ModelRequiredException", verify({}).json.error.code)
      assert.equal(400, verify({ itemId = 1 }).status)
    end)
  end)

  it("counts each item and country of an initiate against the sandbox quota, all or none", function()
    S.e:configure { quotas = { ["2000000002"] = 4 } }
    local sbx = S.e:token("avatax_api", "2000000002", "DEMO-SANDBOX-KEY-0002")
    local base = "/api/v2/companies/1002/items"
    local m = H.api(S.e, "POST", base, { token = sbx, json = { { id = 0, itemCode = "A", description = "mug" },
      { id = 0, itemCode = "B", description = "mug" } } }).json
    local body = function(id, countries)
      return { { itemId = id, countryOfDestinations = countries, isCompliance = false } }
    end
    local res = H.api(S.e, "POST", base .. "/$initiate-hscode-classification", { token = sbx,
      json = body(m[1].id, { "US", "DE", "JP" }) })
    assert.equal(200, res.status)
    res = H.api(S.e, "POST", base .. "/$initiate-hscode-classification", { token = sbx,
      json = body(m[2].id, { "US", "DE" }) })
    assert.equal(429, res.status)
    assert.equal("RequestLimitExceeded", res.json.error.code)
    assert.is_nil(res.headers["retry-after"])
    local b = H.api(S.e, "GET", base .. "/" .. H.id(m[2].id) .. "?$include=HsCodeClassificationStatus", { token = sbx })
    assert.same({}, b.json.hsCodeClassificationStatus)
    assert.equal(200, H.api(S.e, "POST", base .. "/$initiate-hscode-classification", { token = sbx,
      json = body(m[2].id, { "US" }) }).status)
    assert.equal(4, S.e:counters().quota_used["2000000002"])
  end)
end)
