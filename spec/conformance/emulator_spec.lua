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
  it("Identity: the discovery document has IdentityServer's 24 keys", function()
    local _, example = C.fixture("openid_configuration.json")
    local res = get("/.well-known/openid-configuration", {})
    assert.equal(200, res.status)
    assert.same({}, C.conform(res.json, example, "OpenIdConfiguration"))
    local n = 0
    for _ in pairs(res.json) do n = n + 1 end
    assert.equal(#C.MODELS.OpenIdConfiguration.fields, n)
    for _, k in ipairs { "token_endpoint", "revocation_endpoint", "device_authorization_endpoint" } do
      assert.equal(example[k]:gsub("^https://identity%.avalara%.com", e.http_url), res.json[k])
    end
    assert.same(example.grant_types_supported, res.json.grant_types_supported)
  end)

  it("Identity: token and revocation errors as IdentityServer answers them (all 400, client first)", function()
    local text = C.fixture("token_error_invalid_client.json")
    local ID, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"
    local cases = {
      -- path, form (or json), status, error
      { "/connect/token", { grant_type = "client_credentials", client_id = ID, client_secret = "x" }, 400, text },
      { "/connect/token", { client_id = ID, client_secret = "x" }, 400, text },
      { "/connect/token", { grant_type = "client_credentials" }, 400, "invalid_request" },
      { "/connect/token", { client_id = ID, client_secret = KEY }, 400, "unsupported_grant_type" },
      { "/connect/token", { grant_type = "authorization_code", redirect_uri = "http://127.0.0.1/callback",
        client_id = ID, client_secret = KEY }, 400, "invalid_grant" },
      { "/connect/token", { json = { grant_type = "client_credentials", client_id = ID, client_secret = KEY } }, 400,
        "invalid_request" },
      { "/connect/revocation", { token = "t", client_id = ID, client_secret = "x" }, 400, text },
      { "/connect/revocation", { token = "t" }, 400, text },
      { "/connect/revocation", { json = { token = "t", client_id = ID, client_secret = KEY } }, 415, "" },
    }
    for i, case in ipairs(cases) do
      local form = case[2]
      local res = assert(e:request("POST", case[1], form.json and { json = form.json } or { form = form }))
      assert.equal(case[3], res.status, i)
      assert.is_nil(res.headers["www-authenticate"], i)
      if case[4]:sub(1, 1) == "{" or case[4] == "" then
        assert.equal(case[4], res.body, i)
      else
        assert.equal(case[4], res.json.error, i)
      end
      if res.json then assert.same({}, C.conform(res.json, { error = "x" }, "TokenErrorResponse")) end
    end
  end)

  it("Identity failures behind the API: IdentityServerError (36) and AvalaraIdentityApiError (608) faults", function()
    for fixture, kind in pairs { ["error_identity_server.json"] = "IdentityServerError",
      ["error_identity_api.json"] = "AvalaraIdentityApiError" } do
      local _, example = C.fixture(fixture)
      e:fault("definitions", kind)
      local res = get(CB .. "sections")
      assert.equal(500, res.status)
      assert.same({}, C.conform(res.json, example, "ErrorResult"))
      local d, want = res.json.error.details[1], example.error.details[1]
      for _, k in ipairs { "code", "number", "faultCode", "helpLink" } do assert.equal(want[k], d[k]) end
      assert.equal(example.error.message, res.json.error.message)
      e:fault("definitions", kind, 1, { status = 401 })
      res = get(CB .. "sections")
      assert.equal(401, res.status)
      assert.equal("Server", res.json.error.details[1].faultCode)
    end
  end)

  it("query names and values are percent-decoded: %24top is $top (the AvaTax JS SDK's form)", function()
    for _, q in ipairs { "%24top=5", "$top=5", "%24t%6Fp=%35" } do
      local res = get(CB .. "US/84?" .. q)
      assert.equal(200, res.status, q)
      assert.equal(5, #res.json.value, q)
      assert.equal(86, res.json["@recordsetCount"], q)
      assert.matches("%%24skip=5", res.json["@nextLink"], q)
    end
    local res = get(CB .. "US/84?%24filter=" .. emu.percent_encode("hsCode eq '8401'") .. "&%24top=1")
    assert.equal(200, res.status)
    assert.equal("8401", res.json.value[1].hsCode)
    assert.equal(1, res.json["@recordsetCount"])
  end)
end)
