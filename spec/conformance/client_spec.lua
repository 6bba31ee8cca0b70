-- The client parses Avalara's published payloads, byte for byte as
-- published (spec/conformance/fixtures), served over real HTTP by a tiny nginx
-- fixture server: records and counts as sent, codes as strings, no endless
-- paging on the published empty last page, errors with their numbers.
local avalara = require "avalara"
local C = require "spec.support.contract"

-- path -> {status, fixture file} (C.fixture_server).
local ROUTES = {
  ["/api/v2/definitions/crossborder/sections"] = { 200, "sections.json" },
  ["/api/v2/definitions/crossborder/ES/XI"] = { 200, "children_es_xi.json" },
  ["/api/v2/definitions/crossborder/ES/611710000"] = { 200, "empty_last_page.json" },
  ["/api/v2/definitions/crossborder/es/611710000"] = { 200, "empty_last_page.json" },
  ["/api/v2/definitions/crossborder/US/8466935340/hierarchy"] = { 200, "hierarchy_us_8466935340.json" },
  ["/api/v2/definitions/crossborder/US/999999/hierarchy"] = { 404, "error_entity_not_found.json" },
  ["/api/v2/definitions/crossborder/US/84"] = { 400, "error_malformed_filter.json" },
  ["/api/v2/definitions/crossborder/XX/84"] = { 400, "error_invalid_country.json" },
  ["/api/v2/companies/3402/classifications/hs"] = { 201, "classification_sw19.json" },
  ["/api/v2/companies/3402/classifications/hs/1234-SKU001-CA"] = { 200, "classification_sw19.json" },
  ["/api/v2/companies/3402/classifications/hs/CANNOT"] = { 200, "classification_cannot_sw19.json" },
  ["/api/v2/companies/3402/classifications/hs/XXXXXXX"] = { 404, "error_classification_not_found_sw19.json" },
  ["/api/v2/companies/3402/classifications/hs/DENIED"] = { 401, "error_authorization_sw19.json" },
}

-- Both bindings of the core under LuaJIT (the FFI one is its default; docs/core.md), the classic one elsewhere.
local BINDINGS = type(jit) == "table" and { "ffi", "classic" } or { "classic" }

for _, binding in ipairs(BINDINGS) do
  describe("contract (" .. binding .. " binding): the client reads the published payloads", function()
    local server, requests

    setup(function()
      server = C.fixture_server(ROUTES)
    end)
    teardown(function() if server then server:stop() end end)

    local function client(company)
      requests = {}
      return avalara.new { binding = binding, environment = "local", emulator_url = server.url, account_id = "2000000001",
        license_key = "DEMO-LICENSE-KEY-0001", company_id = company or 3402, timeout = 5,
        retries = { max_attempts = 2, base_delay = 0.01, max_delay = 0.01, deadline = 5 },
        on_request = function(info)
          if not info.url:find("/connect/", 1, true) then requests[#requests + 1] = info.url end
        end }
    end

    local function example(name)
      return (select(2, C.fixture(name)))
    end

    it("sections: the records as sent and @recordsetCount", function()
      local c = client()
      assert.equal(binding, c:transport_info().binding)
      local records, count = c:sections()
      assert.equal(21, count)
      assert.same(example("sections.json").value, records)
      assert.equal(1, #requests)
    end)

    it("a hierarchy with branch records and a 10-digit code, untouched", function()
      local c = client()
      local records, count = c:hierarchy("US", "8466935340")
      assert.equal(10, count)
      assert.same(example("hierarchy_us_8466935340.json").value, records)
      assert.equal("8466935340", records[10].hsCode)
      assert.equal("string", type(records[9].hsCode))
      for _, r in ipairs(records) do assert.equal(r.id, math.floor(r.id)) end
      assert.equal(0, records[1].parentHsCodeId)
    end)

    it("a section's chapters: what the page holds, the count as published", function()
      local c = client()
      local records, count = c:hs_codes("ES", "XI")
      assert.equal(14, count)
      assert.same(example("children_es_xi.json").value, records)
      assert.equal(1, #requests)
    end)

    it("the empty last page ends the list at once, though its @nextLink points at itself", function()
      local c = client()
      local records, count = c:hs_codes("ES", "611710000")
      assert.same({}, records)
      assert.equal(0, count)
      assert.equal(1, #requests)
      local n = 0
      for _ in c:each_hs_code("ES", "611710000") do n = n + 1 end
      assert.equal(0, n)
      assert.equal(2, #requests)
    end)

    it("errors: code, number, status and message from the published bodies", function()
      local c = client()
      local cases = {
        { function() return c:hierarchy("US", "999999") end, 404, "EntityNotFoundError", 4, "api" },
        { function() return c:hs_codes("US", "84", { filter = "hsCode eq" }) end, 400, "MalformedFilterException", 182,
          "api" },
        { function() return c:hs_codes("XX", "84") end, 400, "InvalidCountry", 125, "api" },
        { function() return c:classification("XXXXXXX") end, 404, "EntityNotFoundError", 4, "api" },
        { function() return c:classification("DENIED") end, 401, "AuthorizationException", 31, "api" },
      }
      for _, case in ipairs(cases) do
        local r, err = case[1]()
        assert.is_nil(r)
        assert.equal(case[2], err.status)
        assert.equal(case[3], err.code)
        assert.equal(case[4], err.number)
        assert.equal(case[5], err.kind)
        assert.is_string(err.message)
      end
      local _, err = c:classification("XXXXXXX")
      assert.truthy(err.message:find("The Classification Request with id 'XXXXXXX' was not found.", 1, true),
        err.message)
    end)

    it("classifications: the 2019 model, classified or not", function()
      local c = client()
      local model = assert(c:classify({ itemCode = "ABC", description = "Vera Wang Night Gown",
        itemGroup = "Clothing > Women > Formal" }, { country = "CA" }))
      assert.same(example("classification_sw19.json"), model)
      assert.equal("320250", model.hsCode)
      assert.same(example("classification_sw19.json"), assert(c:classification("1234-SKU001-CA")))
      local done = assert(c:wait("1234-SKU001-CA"))
      assert.equal("CLASSIFIED", done.status)
      local cannot = assert(c:wait("CANNOT"))
      assert.same(example("classification_cannot_sw19.json"), cannot)
      assert.equal("Not enough details.", cannot.resolution)
    end)

    it("every fixture keeps to its published model", function()
      for name, model in pairs { ["sections.json"] = "FetchResult", ["children_es_xi.json"] = "FetchResult",
        ["empty_last_page.json"] = "FetchResult", ["hierarchy_us_8466935340.json"] = "FetchResult",
        ["error_entity_not_found.json"] = "ErrorResult", ["error_malformed_filter.json"] = "ErrorResult",
        ["error_invalid_country.json"] = "ErrorResult", ["error_authorization_sw19.json"] = "ErrorResult",
        ["error_classification_not_found_sw19.json"] = "ErrorResult",
        ["classification_sw19.json"] = "HSClassificationModel",
        ["classification_cannot_sw19.json"] = "HSClassificationModel" } do
        local _, value = C.fixture(name)
        assert.same({}, C.conform(value, value, model), name)
      end
    end)
  end)
end
