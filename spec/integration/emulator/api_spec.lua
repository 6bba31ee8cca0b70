-- Classification and definitions routes: authentication, scopes, the
-- request lifecycle, validation, quota and rate limiting.
local emu = require "spec.support.emulator"
local socket = require "socket"

local H = {}
-- The sorted keys of a table.
function H.keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local CREATE = "/api/v2/companies/1001/classifications/hs"
local SECTIONS = "/api/v2/definitions/crossborder/sections"

local function item(description, extra)
  return emu.classification(1001, "SKU-1", description, extra)
end

-- AvaTax's ErrorCodeId numbers (docs/api-contracts.md section 5).
local NUMBERS = {
  AuthenticationIncomplete = 34, BearerTokenInvalid = 37, AuthorizationException = 31, EntityNotFoundError = 4,
  ValidationException = 32, ValueRequiredError = 5, InvalidCountry = 125, MaxStringLengthError = 14,
  JsonFormatError = 47, UnsupportedMediaType = 4016, RequestLimitExceeded = 1715, RateLimitExceeded = 4011,
  NotFound = 4001, InvalidEnumValue = 164, IncorrectValueForField = 4033, MalformedFilterException = 182,
  InvalidQueryField = 17, FieldNotQueryableError = 1408, QueryParameterOutOfRange = 199,
}
local DETAIL_KEYS = { code = 1, number = 1, message = 1, description = 1, faultCode = 1, helpLink = 1,
  severity = 1, refersTo = 1 }

local function assert_avatax_error(res, status, code)
  assert.equal(status, res.status)
  assert.matches("^application/json", res.headers["content-type"])
  assert.is_table(res.json, res.body)
  assert.equal(code, res.json.error.code)
  assert.is_string(res.json.error.message)
  assert.is_string(res.json.error.target)
  for _, d in ipairs(res.json.error.details) do
    for k in pairs(d) do assert.truthy(DETAIL_KEYS[k], k) end
    assert.is_string(d.code)
    assert.equal(NUMBERS[d.code], d.number, d.code)
    assert.is_string(d.message)
    assert.is_string(d.description)
    assert.equal("Client", d.faultCode)
    assert.equal("http://developer.avalara.com/avatax/errors/" .. d.code, d.helpLink)
    assert.truthy(d.severity == "Error" or d.severity == "Exception", d.severity)
  end
  return res.json.error
end

local function refers(res)
  local fields = {}
  for _, d in ipairs(res.json.error.details) do fields[d.refersTo] = d.code end
  return fields
end

describe("emulator API", function()
  local e, auth
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function()
    e:reset()
    auth = { authorization = "Bearer " .. e:token() }
  end)

  local function call(method, path, body, headers)
    return assert(e:request(method, path, { json = body, headers = headers or auth }))
  end

  describe("authentication", function()
    it("needs a bearer token: 401 AuthenticationIncomplete", function()
      local res = assert(e:request("GET", SECTIONS))
      assert_avatax_error(res, 401, "AuthenticationIncomplete")
      assert.matches("^Bearer", res.headers["www-authenticate"])
      assert_avatax_error(call("GET", SECTIONS, nil, { authorization = "Basic eDp5" }), 401, "AuthenticationIncomplete")
      assert_avatax_error(call("POST", CREATE, item("shirt"), {}), 401, "AuthenticationIncomplete")
    end)

    it("refuses an unknown token: 401 BearerTokenInvalid", function()
      assert_avatax_error(call("GET", SECTIONS, nil, { authorization = "Bearer 0123" }), 401, "BearerTokenInvalid")
    end)

    it("accepts hs-code-classification and avatax_api, refuses profile with 403", function()
      for _, scope in ipairs({ "hs-code-classification", "avatax_api" }) do
        local h = { authorization = "Bearer " .. e:token(scope) }
        assert.equal(200, call("GET", SECTIONS, nil, h).status)
        assert.equal(201, call("POST", CREATE, item("cotton t-shirt"), h).status)
      end
      local h = { authorization = "Bearer " .. e:token("profile") }
      assert_avatax_error(call("GET", SECTIONS, nil, h), 403, "AuthorizationException")
      assert_avatax_error(call("POST", CREATE, item("cotton t-shirt"), h), 403, "AuthorizationException")
    end)

    it("refuses tokens expired with POST /_emulator/tokens/expire", function()
      assert.equal(200, call("GET", SECTIONS).status)
      assert.equal(200, e:request("POST", "/_emulator/tokens/expire").status)
      assert_avatax_error(call("GET", SECTIONS), 401, "BearerTokenInvalid")
    end)

    it("refuses a company outside the token's account with 403", function()
      assert_avatax_error(call("POST", "/api/v2/companies/1002/classifications/hs", item("shirt")), 403,
        "AuthorizationException")
    end)

    it("sends an x-correlation-id on every response", function()
      local a = call("GET", SECTIONS)
      local b = call("GET", SECTIONS, nil, {})
      assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", a.headers["x-correlation-id"])
      assert.not_equal(a.headers["x-correlation-id"], b.headers["x-correlation-id"])
    end)
  end)

  describe("classification", function()
    it("creates PENDING (201) with the published model and becomes CLASSIFIED after the delay", function()
      e:configure({ classification_delay = 0.3 })
      local res = call("POST", CREATE, item("Men's T-shirt of cotton, knitted", { summary = "a cotton tee",
        parameters = { { name = "price", value = "12.31", unit = "USD" } }, unknownField = "dropped" }))
      assert.equal(201, res.status)
      local m = res.json
      assert.equal("PENDING", m.status)
      assert.equal("1001-SKU-1-US", m.id)
      assert.same({ "countryOfDestination", "id", "item", "status" }, H.keys(m))
      assert.equal("US", m.countryOfDestination)
      assert.same({ "companyId", "createdDate", "description", "id", "itemCode", "itemGroup", "parameters",
        "summary" }, H.keys(m.item))
      assert.equal(1001, m.item.companyId)
      assert.equal("SKU-1", m.item.itemCode)
      assert.equal("a cotton tee", m.item.summary)
      assert.is_number(m.item.id)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT", m.item.createdDate)
      assert.same({ { name = "price", value = "12.31", unit = "USD" } }, m.item.parameters)
      assert.equal(CREATE .. "/" .. m.id, res.headers.location)

      local pending = call("GET", CREATE .. "/" .. m.id)
      assert.equal(200, pending.status)
      assert.equal("PENDING", pending.json.status)

      socket.sleep(0.4)
      local done = call("GET", CREATE .. "/" .. m.id).json
      assert.equal("CLASSIFIED", done.status)
      assert.matches("^%d%d%d%d%d%d$", done.hsCode)
      assert.equal("6109", done.hsCode:sub(1, 4))
      assert.same({ "countryOfDestination", "hsCode", "id", "item", "status" }, H.keys(done))
    end)

    it("adds the unpublished hsCodeDescription only with demo_extras", function()
      e:configure({ classification_delay = 0, demo_extras = true })
      local m = call("POST", CREATE, item("cotton t-shirt")).json
      local got = call("GET", CREATE .. "/" .. m.id).json
      assert.truthy(got.hsCodeDescription:lower():find("t%-shirt"))
    end)

    it("gives the same item for the same country one id: a repeated create replaces", function()
      e:configure({ classification_delay = 0 })
      local first = call("POST", CREATE, item("zzqx"))
      assert.equal("CANNOT_BE_CLASSIFIED", call("GET", CREATE .. "/" .. first.json.id).json.status)
      local again = call("POST", CREATE, item("cotton t-shirt"))
      assert.equal(201, again.status)
      assert.equal(first.json.id, again.json.id)
      assert.equal("PENDING", again.json.status)
      assert.equal(first.json.item.id, again.json.item.id)
      assert.equal(first.json.item.createdDate, again.json.item.createdDate)
      local got = call("GET", CREATE .. "/" .. first.json.id).json
      assert.equal("CLASSIFIED", got.status)
      assert.equal("cotton t-shirt", got.item.description)
      -- another country or item code is another classification
      assert.equal("1001-SKU-1-GB", call("POST", CREATE, item("cotton t-shirt", { countryOfDestination = "gb" })).json.id)
      assert.equal("1001-SKU-2-US", call("POST", CREATE, emu.classification(1001, "SKU-2", "mug")).json.id)
    end)

    it("takes item codes with any character: the id is percent-encoded in the path", function()
      local code = [[A/B +?%#'" é\x]]
      local m = call("POST", CREATE, emu.classification(1001, code, "cotton t-shirt")).json
      assert.equal("1001-" .. code .. "-US", m.id)
      local path = CREATE .. "/" .. emu.percent_encode(m.id)
      assert.equal(m.id, call("GET", path).json.id)
      -- Avalara's _-ava2f-_ tokens for a "/" work too
      local plain = call("POST", CREATE, emu.classification(1001, "X/Y", "cotton t-shirt")).json
      assert.equal("1001-X/Y-US", call("GET", CREATE .. "/1001-X_-ava2f-_Y-US").json.id)
      assert.equal(plain.id, call("GET", CREATE .. "/1001-X%2FY-US").json.id)
    end)

    it("resolves on the first GET with a zero delay", function()
      e:configure({ classification_delay = 0 })
      local m = call("POST", CREATE, item("fresh apples")).json
      assert.equal("PENDING", m.status)
      local got = call("GET", CREATE .. "/" .. m.id).json
      assert.equal("CLASSIFIED", got.status)
      assert.is_nil(got.hsCodeDescription)
    end)

    it("gives CANNOT_BE_CLASSIFIED with a resolution for a useless description", function()
      e:configure({ classification_delay = 0 })
      local m = call("POST", CREATE, item("zzqx")).json
      local got = call("GET", CREATE .. "/" .. m.id).json
      assert.equal("CANNOT_BE_CLASSIFIED", got.status)
      assert.equal("Not enough details.", got.resolution)
      assert.is_nil(got.hsCode)
    end)

    it("updates the item with PUT and goes back to PENDING; the id's parts cannot change", function()
      e:configure({ classification_delay = 0 })
      local m = call("POST", CREATE, item("zzqx")).json
      assert.equal("CANNOT_BE_CLASSIFIED", call("GET", CREATE .. "/" .. m.id).json.status)
      e:configure({ classification_delay = 0.3 })
      local put = call("PUT", CREATE .. "/" .. m.id, item("cotton t-shirt", { countryOfDestination = "us" }))
      assert.equal(200, put.status)
      assert.equal("PENDING", put.json.status)
      assert.equal("US", put.json.countryOfDestination)
      assert.equal("cotton t-shirt", put.json.item.description)
      assert.equal(m.id, put.json.id)
      assert.is_nil(put.json.resolution)
      socket.sleep(0.4)
      assert.equal("6109", call("GET", CREATE .. "/" .. m.id).json.hsCode:sub(1, 4))
      local moved = call("PUT", CREATE .. "/" .. m.id, emu.classification(1001, "SKU-9", "cotton t-shirt"))
      assert.same({ ["item.itemCode"] = "IncorrectValueForField" }, refers(moved))
      assert_avatax_error(moved, 422, "IncorrectValueForField")
    end)

    it("answers 404 EntityNotFoundError for an unknown id or another company's", function()
      local err = assert_avatax_error(call("GET", CREATE .. "/no-such-id"), 404, "EntityNotFoundError")
      assert.equal("The Classification Request with id 'no-such-id' was not found.", err.details[1].description)
      assert_avatax_error(call("PUT", CREATE .. "/no-such-id", item("x")), 404, "EntityNotFoundError")
      local m = call("POST", CREATE, item("shirt")).json
      local sandbox = { authorization = "Bearer " .. e:token(nil, "2000000002", "DEMO-SANDBOX-KEY-0002") }
      assert_avatax_error(call("GET", "/api/v2/companies/1002/classifications/hs/" .. m.id, nil, sandbox),
        404, "EntityNotFoundError")
    end)

    it("validates the 2019 model with 422 and a detail per field", function()
      local res = call("POST", CREATE, { item = {} })
      assert_avatax_error(res, 422, "ValidationException")
      assert.same({ countryOfDestination = "ValueRequiredError", ["item.companyId"] = "ValueRequiredError",
        ["item.itemCode"] = "ValueRequiredError", ["item.description"] = "ValueRequiredError",
        ["item.itemGroup"] = "ValueRequiredError" }, refers(res))

      res = call("POST", CREATE, { countryOfDestination = "USA", item = { companyId = 1002,
        itemCode = string.rep("x", 256), description = string.rep("y", 256), itemGroup = string.rep("z", 2001),
        classificationParameters = { { name = "colour", value = "red" }, { name = "price", value = "1" },
          { name = "url", value = 5 } },
        parameters = { { name = "price", value = "1", unit = "EUR" } } } })
      assert_avatax_error(res, 422, "ValidationException")
      assert.same({ countryOfDestination = "InvalidCountry", ["item.companyId"] = "IncorrectValueForField",
        ["item.itemCode"] = "MaxStringLengthError", ["item.description"] = "MaxStringLengthError",
        ["item.itemGroup"] = "MaxStringLengthError",
        ["item.classificationParameters[1].name"] = "InvalidEnumValue",
        ["item.classificationParameters[2].unit"] = "ValueRequiredError",
        ["item.classificationParameters[3].value"] = "ValidationException",
        ["item.parameters[1].unit"] = "InvalidEnumValue" }, refers(res))

      -- one failing field: its code is the error's code (as SW19's example)
      res = call("POST", CREATE, item("shirt", { itemGroup = "" }))
      local err = assert_avatax_error(res, 422, "ValueRequiredError")
      assert.equal("Field item.itemGroup is required.", err.message)
      assert.equal("item.itemGroup", err.details[1].refersTo)

      assert.equal(201, call("POST", CREATE, emu.classification(1001, string.rep("x", 255), string.rep("y", 255),
        { itemGroup = string.rep("z", 2000) })).status)
      -- lengths in characters, not bytes: 255 é (510 bytes) are taken, 256 are not
      assert.equal(201, call("POST", CREATE, item(string.rep("é", 255))).status)
      assert_avatax_error(call("POST", CREATE, item(string.rep("é", 256))), 422, "MaxStringLengthError")
      assert_avatax_error(call("POST", CREATE, { countryOfDestination = "US" }), 422, "ValueRequiredError")
      assert_avatax_error(call("POST", CREATE, { 1, 2 }), 422, "ValidationException")
      assert_avatax_error(call("POST", CREATE, item(42)), 422, "ValidationException")
      assert_avatax_error(call("POST", CREATE, item("x", { companyId = "1001" })), 422, "ValidationException")
    end)

    it("answers 415 for a body that is not JSON and 400 for invalid JSON", function()
      local res = assert(e:request("POST", CREATE, { body = "countryOfDestination=US", headers = {
        authorization = auth.authorization, ["content-type"] = "application/x-www-form-urlencoded" } }))
      assert_avatax_error(res, 415, "UnsupportedMediaType")
      res = assert(e:request("POST", CREATE, { body = "{\n  nope", headers = {
        authorization = auth.authorization, ["content-type"] = "application/json" } }))
      local err = assert_avatax_error(res, 400, "JsonFormatError")
      assert.equal("The request body did not contain valid JSON.", err.message)
      assert.matches("^At line 2 position 3: ", err.details[1].description)
      res = assert(e:request("PUT", CREATE .. "/x", { body = "x", headers = {
        authorization = auth.authorization, ["content-type"] = "text/plain" } }))
      assert.equal(404, res.status) -- the id is looked up before the body
    end)

    it("answers the gateway's 404 NotFound for unknown paths and methods", function()
      local err = assert_avatax_error(call("DELETE", CREATE), 404, "NotFound")
      assert.equal("No route matches DELETE " .. CREATE .. ".", err.details[1].description)
      assert_avatax_error(call("GET", "/api/v2/nothing"), 404, "NotFound")
      assert_avatax_error(call("GET", "/api/v2/definitions/crossborder/US"), 404, "NotFound")
    end)
  end)

  describe("sandbox quota", function()
    it("gives 429 RequestLimitExceeded without Retry-After past the quota", function()
      e:configure({ quotas = { ["2000000002"] = 2 } })
      local h = { authorization = "Bearer " .. e:token(nil, "2000000002", "DEMO-SANDBOX-KEY-0002") }
      local path = "/api/v2/companies/1002/classifications/hs"
      local function sku(n) return emu.classification(1002, "SKU-" .. n, "shirt") end
      assert.equal(201, call("POST", path, sku(1), h).status)
      assert.equal(201, call("POST", path, sku(2), h).status)
      local res = call("POST", path, sku(3), h)
      assert_avatax_error(res, 429, "RequestLimitExceeded")
      assert.is_nil(res.headers["retry-after"])
      -- a repeated create replaces and costs nothing, even past the quota
      assert.equal(201, call("POST", path, sku(1), h).status)
      -- only creates count; the account without quota is unaffected
      assert.equal(200, call("GET", SECTIONS, nil, h).status)
      for n = 1, 3 do assert.equal(201, call("POST", CREATE, emu.classification(1001, "SKU-" .. n, "shirt")).status) end
      assert.equal(2, e:counters().quota_used["2000000002"])
    end)

    it("defaults to 100 for the sandbox account", function()
      local cfg = e:request("GET", "/_emulator/config").json
      assert.equal(100, cfg.accounts["2000000002"].quota)
      assert.is_nil(cfg.accounts["2000000001"].quota)
    end)
  end)

  describe("rate limiting", function()
    it("is off by default and gives 429 RateLimitExceeded with Retry-After when on", function()
      for _ = 1, 5 do assert.equal(200, call("GET", SECTIONS).status) end
      e:configure({ rate_limit = { requests = 2, window = 5 } })
      assert.equal(200, call("GET", SECTIONS).status)
      local second = call("GET", SECTIONS)
      local third = call("GET", SECTIONS)
      -- a window boundary may fall between the calls; one of them is limited
      local limited = second.status == 429 and second or third
      assert_avatax_error(limited, 429, "RateLimitExceeded")
      local retry = tonumber(limited.headers["retry-after"])
      assert.truthy(retry and retry >= 1 and retry <= 5)
    end)
  end)

  describe("definitions", function()
    local CB = "/api/v2/definitions/crossborder/"
    local RECORD_KEYS = { "description", "effDate", "hsCode", "id", "parentHsCodeId", "system" }

    local function codes(list)
      local out = {}
      for i, v in ipairs(list) do out[i] = v.hsCode end
      return out
    end

    it("lists the 21 sections as HsCodeModel records", function()
      local res = call("GET", SECTIONS)
      assert.equal(200, res.status)
      assert.same({ "@recordsetCount", "value" }, H.keys(res.json))
      assert.equal(21, res.json["@recordsetCount"])
      assert.equal(21, #res.json.value)
      for _, v in ipairs(res.json.value) do
        assert.same(RECORD_KEYS, H.keys(v))
        assert.equal("", v.system)
      end
      assert.equal("I", res.json.value[1].hsCode)
      assert.equal("XI", res.json.value[11].hsCode)
      assert.equal("TEXTILES AND TEXTILE ARTICLES", res.json.value[11].description)
    end)

    it("lists a section's chapters for a country (/US/XI), under the section's id", function()
      local xi = call("GET", SECTIONS).json.value[11]
      local res = call("GET", CB .. "US/XI")
      assert.equal(200, res.status)
      assert.equal(14, res.json["@recordsetCount"])
      assert.same({ "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61", "62", "63" },
        codes(res.json.value))
      for _, v in ipairs(res.json.value) do
        assert.same(RECORD_KEYS, H.keys(v))
        assert.equal(xi.id, v.parentHsCodeId)
        assert.equal("Harmonized Tariff Schedule A of the United States", v.system)
      end
      assert.equal("Integrated Tariff of the European Union", call("GET", CB .. "es/xi").json.value[1].system)
    end)

    it("lists the children of a chapter and a heading, with a relative @nextLink", function()
      local res = call("GET", CB .. "US/6109")
      assert.equal(200, res.status)
      assert.same({ "610910", "610990" }, codes(res.json.value))
      assert.equal(2, res.json["@recordsetCount"])
      assert.equal("/api/v2/definitions/crossborder/us/6109?%24skip=2", res.json["@nextLink"])
      local chapter = call("GET", CB .. "US/61").json
      assert.equal(17, chapter["@recordsetCount"])
      assert.equal(chapter.value[9].id, res.json.value[1].parentHsCodeId)
    end)

    it("gives an empty last page for a subheading, @nextLink included", function()
      local res = call("GET", CB .. "ES/611710")
      assert.equal(200, res.status)
      assert.equal('{"@recordsetCount":0,"value":[],"@nextLink":"/api/v2/definitions/crossborder/es/611710?%24skip=0"}',
        res.body)
    end)

    it("pages with $top and $skip, spelled $ or %24, and links to the next page", function()
      local first = call("GET", CB .. "US/84?%24top=5").json
      assert.equal(86, first["@recordsetCount"])
      assert.same({ "8401", "8402", "8403", "8404", "8405" }, codes(first.value))
      assert.equal("/api/v2/definitions/crossborder/us/84?%24skip=5&%24top=5", first["@nextLink"])
      local second = call("GET", first["@nextLink"]).json
      assert.same({ "8406", "8407", "8408", "8409", "8410" }, codes(second.value))
      local last = call("GET", CB .. "US/84?$top=5&$skip=85").json
      assert.same({ "8487" }, codes(last.value))
      local past = call("GET", last["@nextLink"]).json
      assert.same({}, past.value)
      assert.equal(86, past["@recordsetCount"])
      assert.equal(last["@nextLink"], past["@nextLink"])
      assert.equal(86, #call("GET", CB .. "US/84?$top=5000").json.value)
    end)

    it("filters on hsCode and description and orders, keeping them in @nextLink", function()
      local res = call("GET", CB .. "US/84?%24filter=" .. emu.percent_encode("description contains 'PUMP'")
        .. "&%24orderBy=" .. emu.percent_encode("hsCode DESC")).json
      assert.same({ "8418", "8414", "8413" }, codes(res.value))
      assert.equal(3, res["@recordsetCount"])
      assert.equal("/api/v2/definitions/crossborder/us/84?%24skip=3&%24filter=description%20contains%20%27PUMP%27"
        .. "&%24orderBy=hsCode%20DESC", res["@nextLink"])
      res = call("GET", CB .. "US/84?$filter=" .. emu.percent_encode("hsCode startswith '847' and hsCode ne '8470'")).json
      assert.same({ "8471", "8472", "8473", "8474", "8475", "8476", "8477", "8478", "8479" }, codes(res.value))
      res = call("GET", CB .. "US/84?$filter=" .. emu.percent_encode("hsCode eq '8471'")).json
      assert.same({ "8471" }, codes(res.value))
    end)

    it("answers a bad filter, order or page size with the published errors (400)", function()
      local bad = function(q) return call("GET", CB .. "US/84?" .. q) end
      assert_avatax_error(bad("$filter=" .. emu.percent_encode("hsCode eq")), 400, "MalformedFilterException")
      assert_avatax_error(bad("$filter=" .. emu.percent_encode("color eq 'red'")), 400, "InvalidQueryField")
      assert_avatax_error(bad("$filter=" .. emu.percent_encode("system eq 'x'")), 400, "FieldNotQueryableError")
      assert_avatax_error(bad("$orderBy=nope"), 400, "InvalidQueryField")
      assert_avatax_error(bad("$top=-1"), 400, "QueryParameterOutOfRange")
    end)

    it("gives the hierarchy from the root record down to the code, without sections", function()
      local res = call("GET", CB .. "US/610910/hierarchy")
      assert.equal(200, res.status)
      assert.same({ "", "61", "6109", "610910" }, codes(res.json.value))
      assert.equal(4, res.json["@recordsetCount"])
      local root = res.json.value[1]
      assert.same(RECORD_KEYS, H.keys(root))
      assert.equal(0, root.parentHsCodeId)
      assert.equal("The root of the Harmonized System code tree.", root.description)
      assert.equal("Harmonized Tariff Schedule A of the United States", root.system)
      for i = 2, 4 do assert.equal(res.json.value[i - 1].id, res.json.value[i].parentHsCodeId) end
      -- the same code has the same id in every list
      assert.equal(res.json.value[4].id, call("GET", CB .. "US/6109").json.value[1].id)
    end)

    it("answers 404 for an unknown code and 400 InvalidCountry for a bad country", function()
      assert_avatax_error(call("GET", CB .. "US/123456"), 404, "EntityNotFoundError")
      assert_avatax_error(call("GET", CB .. "US/6109100010"), 404, "EntityNotFoundError")
      assert_avatax_error(call("GET", CB .. "US/123456/hierarchy"), 404, "EntityNotFoundError")
      assert_avatax_error(call("GET", CB .. "US/XI/hierarchy"), 404, "EntityNotFoundError")
      local err = assert_avatax_error(call("GET", CB .. "XX/6109"), 400, "InvalidCountry")
      assert.equal("The country 'XX' is not a recognized country code.", err.message)
      assert_avatax_error(call("GET", CB .. "USA1/6109/hierarchy"), 400, "InvalidCountry")
      assert.equal(200, call("GET", CB .. "Spain/6109").status)
    end)
  end)
end)
