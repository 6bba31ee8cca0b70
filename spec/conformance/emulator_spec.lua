-- The emulator answers in the shapes of Avalara's published examples
-- (spec/conformance/fixtures): the same fields with the same JSON types, and
-- nothing outside the published models.
local emu = require "spec.support.emulator"
local C = require "spec.support.contract"

local CB = "/api/v2/definitions/crossborder/"
local HS = "/api/v2/companies/3402/classifications/hs"

describe("contract: the emulator sends the published shapes", function()
  local e, auth

  setup(function()
    e = emu.start()
  end)
  teardown(function() e:stop() end)
  before_each(function()
    C.reset(e)
    auth = { authorization = "Bearer " .. e:token() }
  end)

  local function get(path, headers)
    return assert(e:request("GET", path, { headers = headers or auth }))
  end

  it("checks what it says: a missing, extra or mistyped field is reported", function()
    local _, example = C.fixture("sections.json")
    local bad = C.without(example)
    bad.value[1].id = "116499"
    bad.value[2].hsCodeDescription = "x"
    bad.value[2].system = nil
    assert.same({ "FetchResult.value[1].id: string, the published example has integer",
      "FetchResult.value[2].hsCodeDescription: not a field of the published HsCodeModel",
      "FetchResult.value[2].system: missing" }, C.conform(bad, example, "FetchResult"))
    assert.same({}, C.conform(example, example, "FetchResult"))
  end)

  it("sections #smoke", function()
    local _, example = C.fixture("sections.json")
    local res = get(CB .. "sections")
    assert.equal(200, res.status)
    assert.same({}, C.conform(res.json, example, "FetchResult"))
    assert.equal(example["@recordsetCount"], res.json["@recordsetCount"])
    local by_code = {}
    for _, r in ipairs(res.json.value) do by_code[r.hsCode] = r end
    for _, want in ipairs(example.value) do
      assert.equal(want.description, by_code[want.hsCode].description)
      assert.equal(want.system, by_code[want.hsCode].system)
    end
    assert.equal(res.json.value[1].parentHsCodeId, by_code.XI.parentHsCodeId)
  end)

  it("a section's chapters for a country (ES/XI and US/XI)", function()
    local _, example = C.fixture("children_es_xi.json")
    local xi = get(CB .. "sections").json.value[11]
    for _, country in ipairs { "ES", "US" } do
      local res = get(CB .. country .. "/XI")
      assert.equal(200, res.status)
      assert.same({}, C.conform(res.json, example, "FetchResult"))
      assert.equal(example["@recordsetCount"], res.json["@recordsetCount"])
      local chapter61
      for _, r in ipairs(res.json.value) do
        assert.equal(xi.id, r.parentHsCodeId)
        if r.hsCode == "61" then chapter61 = r end
      end
      assert.truthy(chapter61)
    end
    assert.equal(example.value[1].system, get(CB .. "ES/XI").json.value[1].system)
  end)

  it("the empty last page, @nextLink included", function()
    local _, example = C.fixture("empty_last_page.json")
    local res = get(CB .. "ES/611710")
    assert.equal(200, res.status)
    assert.same({}, C.conform(res.json, example, "FetchResult"))
    -- the published link's form: lower-case country, %24-encoded key
    local form = example["@nextLink"]:gsub("%d+%?", "611710?")
    assert.equal(form, res.json["@nextLink"])
  end)

  it("a hierarchy: the root record, then down to the code", function()
    local _, example = C.fixture("hierarchy_us_8466935340.json")
    local res = get(CB .. "US/846693/hierarchy")
    assert.equal(200, res.status)
    assert.same({}, C.conform(res.json, example, "FetchResult"))
    local root, want = res.json.value[1], example.value[1]
    for _, k in ipairs { "hsCode", "parentHsCodeId", "description", "system" } do assert.equal(want[k], root[k]) end
    assert.same({ "", "84", "8466", "846693" }, { res.json.value[1].hsCode, res.json.value[2].hsCode,
      res.json.value[3].hsCode, res.json.value[4].hsCode })
  end)

  it("errors: EntityNotFoundError, MalformedFilterException, InvalidCountry", function()
    local cases = {
      { "error_entity_not_found.json", CB .. "US/123456", 404 },
      { "error_malformed_filter.json", CB .. "US/84?%24filter=" .. emu.percent_encode("hsCode eq"), 400 },
      { "error_invalid_country.json", CB .. "XX/84", 400 },
    }
    for _, case in ipairs(cases) do
      local _, example = C.fixture(case[1])
      local res = get(case[2])
      assert.equal(case[3], res.status)
      assert.same({}, C.conform(res.json, example, "ErrorResult"))
      local d, want = res.json.error.details[1], example.error.details[1]
      assert.equal(want.code, res.json.error.code)
      for _, k in ipairs { "code", "number", "faultCode", "helpLink", "severity" } do assert.equal(want[k], d[k]) end
    end
    local d = get(CB .. "XX/84").json.error.details[1]
    local _, published = C.fixture("error_invalid_country.json")
    assert.equal(published.error.details[1].message:gsub("%-0%-", "XX"), d.message)
    assert.equal(published.error.details[1].description, d.description)
  end)

  it("errors: the 2019 examples (authorization, classification not found)", function()
    local _, example = C.fixture("error_authorization_sw19.json")
    local res = get(HS .. "/x", { authorization = "Bearer " .. e:token("profile") })
    assert.equal(403, res.status) -- docs/design.md section 7 (SW19's example is a 401)
    assert.same({}, C.conform(res.json, example, "ErrorResult"))
    for _, k in ipairs { "code", "number", "message", "description", "helpLink", "severity" } do
      assert.equal(example.error.details[1][k], res.json.error.details[1][k])
    end
    _, example = C.fixture("error_classification_not_found_sw19.json")
    res = get(HS .. "/XXXXXXX")
    assert.equal(404, res.status)
    assert.same({}, C.conform(res.json, example, "ErrorResult"))
    for _, k in ipairs { "code", "number", "message", "description", "helpLink", "severity" } do
      assert.equal(example.error.details[1][k], res.json.error.details[1][k])
    end
    assert.equal(example.error.target, res.json.error.target)
  end)

  it("classifications: the example item, PENDING, CLASSIFIED and CANNOT_BE_CLASSIFIED", function()
    local _, classified = C.fixture("classification_sw19.json")
    local _, cannot = C.fixture("classification_cannot_sw19.json")
    -- the published item as the request (read-only fields are ignored)
    local body = { countryOfDestination = classified.countryOfDestination, item = C.without(classified.item) }
    body.item.description = "men's cotton t-shirt"
    local res = assert(e:request("POST", HS, { headers = auth, json = body }))
    assert.equal(201, res.status)
    assert.same({}, C.conform(res.json, C.without(classified, "hsCode"), "HSClassificationModel"))
    assert.equal("PENDING", res.json.status)
    assert.equal("3402-ABC-CA", res.json.id)
    local done = get(HS .. "/" .. res.json.id).json
    assert.equal("CLASSIFIED", done.status)
    assert.same({}, C.conform(done, classified, "HSClassificationModel"))

    body = { countryOfDestination = "CA", item = C.without(cannot.item) }
    body.item.description = "zzqx"
    res = assert(e:request("POST", HS, { headers = auth, json = body }))
    assert.same({}, C.conform(get(HS .. "/" .. res.json.id).json, cannot, "HSClassificationModel"))
    assert.equal("Not enough details.", get(HS .. "/" .. res.json.id).json.resolution)
  end)
end)
