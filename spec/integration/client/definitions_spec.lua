-- Definitions through the client: sections, hs_codes (every page followed),
-- each_hs_code (pages fetched lazily), hierarchy; @nextLink relative or
-- absolute, empty last pages, repeated links; argument errors.
local cjson = require "cjson"
local emu = require "spec.support.emulator"
local definitions = require "avalara.hs.tariff"
local H = require "spec.support.client"

local function codes(list)
  local out = {}
  for i, r in ipairs(list) do out[i] = r.hsCode end
  return out
end

describe("client definitions", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function() e:reset() end)

  -- A client that records the URL of every definitions request it makes.
  local function watched(opts)
    local urls = {}
    local o = { on_request = function(info)
      if info.url:find("/definitions/", 1, true) then urls[#urls + 1] = info.url end
    end }
    for k, v in pairs(opts or {}) do o[k] = v end
    return H.client(e, o), urls
  end

  it("sections: the 21 records and their count", function()
    local c = H.client(e)
    local s, count = c:sections()
    assert.equal(21, count)
    assert.equal(21, #s)
    assert.equal("I", s[1].hsCode)
    assert.equal("XXI", s[21].hsCode)
    assert.equal("", s[11].system)
  end)

  it("lists chapter 84's headings with top = 5 whole, page by page", function()
    local c, urls = watched()
    local all = assert(c:hs_codes("US", "84"))
    assert.equal(1, #urls)
    local c5, urls5 = watched()
    local records, count = c5:hs_codes("US", "84", { top = 5 })
    assert.equal(86, count)
    assert.equal(86, #records)
    assert.same(codes(all), codes(records))
    -- ceil(86 / 5) pages, no more: the last (1 record) ends it by the count
    assert.equal(18, #urls5)
    assert.equal(18, H.route(e, "definitions_children") - 1)
    assert.truthy(urls5[1]:find("/crossborder/US/84?%24top=5", 1, true), urls5[1])
    for i = 2, 18 do
      assert.truthy(urls5[i]:find("%24skip=" .. (i - 1) * 5, 1, true), urls5[i])
      assert.truthy(urls5[i]:find("%24top=5", 1, true), urls5[i])
    end
    local seen = {}
    for _, r in ipairs(records) do
      assert.is_nil(seen[r.hsCode])
      seen[r.hsCode] = true
      assert.is_string(r.hsCode)
      assert.equal(all[1].parentHsCodeId, r.parentHsCodeId)
    end
  end)

  it("each_hs_code fetches pages lazily", function()
    local c, urls = watched()
    local got = {}
    for rec, err in c:each_hs_code("US", "84", { top = 10 }) do
      assert(rec, err)
      got[#got + 1] = rec.hsCode
      -- a page is fetched only when the one before is used up
      assert.equal(math.floor((#got - 1) / 10) + 1, #urls)
      if #got == 25 then break end
    end
    assert.equal(3, #urls)
    assert.equal("8425", got[25])
    local all = {}
    for rec in c:each_hs_code("US", "XI") do all[#all + 1] = rec.hsCode end
    assert.same({ "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61", "62", "63" }, all)
  end)

  it("filters, orders and skips", function()
    local c = H.client(e)
    local r, count = c:hs_codes("US", "84", { filter = "description contains 'pump'", order_by = "hsCode desc" })
    assert.same({ "8418", "8414", "8413" }, codes(r))
    assert.equal(3, count)
    r, count = c:hs_codes("US", "84", { skip = 80, top = 2 })
    assert.same({ "8482", "8483", "8484", "8485", "8486", "8487" }, codes(r))
    assert.equal(86, count)
    r, count = c:hs_codes("US", "84", { filter = "hsCode eq '9999'" })
    assert.same({}, r)
    assert.equal(0, count)
  end)

  it("an empty list ends at the first (empty) page, though it has a @nextLink", function()
    local c, urls = watched()
    local r, count = c:hs_codes("ES", "611710")
    assert.same({}, r)
    assert.equal(0, count)
    assert.equal(1, #urls)
    for _ in c:each_hs_code("ES", "611710") do error("no record expected") end
    assert.equal(2, #urls)
  end)

  it("hierarchy: root record first, codes as strings", function()
    local c = H.client(e)
    local h, count = c:hierarchy("US", "0101")
    assert.same({ "", "01", "0101" }, codes(h))
    assert.equal(3, count)
    assert.equal(0, h[1].parentHsCodeId)
    assert.equal("The root of the Harmonized System code tree.", h[1].description)
  end)

  it("API errors come back with the AvaTax number", function()
    local c = H.client(e)
    local none, err = c:hierarchy("US", "123456")
    assert.is_nil(none)
    assert.equal(404, err.status)
    assert.equal("EntityNotFoundError", err.code)
    assert.equal(4, err.number)
    none, err = c:hs_codes("XX", "84")
    assert.is_nil(none)
    assert.equal(125, err.number)
    none, err = c:hs_codes("US", "84", { filter = "hsCode eq" })
    assert.is_nil(none)
    assert.equal("MalformedFilterException", err.code)
    assert.equal(182, err.number)
    local iter = c:each_hs_code("US", "84", { filter = "nope eq 1" })
    local rec, ierr = iter()
    assert.is_nil(rec) -- nil, err: the error convention of each_*
    assert.equal(17, ierr.number)
    assert.is_nil(iter())
  end)

  it("raises on bad arguments before any request", function()
    local c = H.client(e)
    local cases = {
      { function() c:hs_codes("US", 84) end, "HS codes keep their leading zeros" },
      { function() c:hs_codes("US") end, "'code' must be" },
      { function() c:hs_codes(nil, "84") end, "'country' must be" },
      { function() c:hs_codes("US", "84", { top = 0 }) end, "'top' must be an integer from 1 to 1000" },
      { function() c:hs_codes("US", "84", { top = 1001 }) end, "'top'" },
      { function() c:hs_codes("US", "84", { skip = -1 }) end, "'skip'" },
      { function() c:hs_codes("US", "84", { filter = 5 }) end, "'filter' must be a string" },
      { function() c:hs_codes("US", "84", { pagesize = 5 }) end, "unknown option 'pagesize'" },
      { function() c:each_hs_code("US", 84) end, "client:each_hs_code:" },
      { function() c:hierarchy("US", 610910) end, "client:hierarchy:" },
    }
    for _, case in ipairs(cases) do
      local ok, err = pcall(case[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find(case[2], 1, true), err)
    end
    assert.equal(0, H.route(e, "definitions_children") + H.route(e, "definitions_hierarchy"))
  end)

  describe("@nextLink (served by a transport double: shapes the emulator does not send)", function()
    -- pages: url pattern -> FetchResult table; token requests answered too.
    local function client_over(pages, seen)
      return H.client(e, { transport = function(req)
        if req.url:find("/connect/token", 1, true) then
          return { status = 200, headers = { ["content-type"] = "application/json" },
            body = '{"access_token":"t","token_type":"Bearer","expires_in":3600}' }
        end
        seen[#seen + 1] = req.url
        for pattern, page in pairs(pages) do
          if req.url:find(pattern, 1, true) then
            return { status = 200, headers = { ["content-type"] = "application/json" }, body = cjson.encode(page) }
          end
        end
        return { status = 404, headers = {}, body = "" }
      end })
    end

    it("follows relative and absolute links on the API's origin, keeps unknown fields", function()
      local seen = {}
      local c = client_over({
        ["/US/84?%24top=2"] = { ["@recordsetCount"] = 5, value = { { hsCode = "8401", extra = { a = 1 } },
          { hsCode = "8402" } }, ["@nextLink"] = "/api/v2/definitions/crossborder/us/84?%24skip=2&%24top=2" },
        ["%24skip=2&"] = { ["@recordsetCount"] = 5, value = { { hsCode = "8403" }, { hsCode = "8404" } },
          ["@nextLink"] = e.http_url .. "/api/v2/definitions/crossborder/us/84?%24skip=4&%24top=2" },
        ["%24skip=4&"] = { ["@recordsetCount"] = 5, value = { { hsCode = "8405", isDecisionNode = true } },
          ["@nextLink"] = "/api/v2/definitions/crossborder/us/84?%24skip=5&%24top=2" },
      }, seen)
      local r, count = c:hs_codes("US", "84", { top = 2 })
      assert.same({ "8401", "8402", "8403", "8404", "8405" }, codes(r))
      assert.equal(5, count)
      assert.same({ a = 1 }, r[1].extra)
      assert.is_true(r[5].isDecisionNode)
      assert.equal(3, #seen)
    end)

    it("stops on a link it already followed, and when there is none", function()
      local seen = {}
      local c = client_over({
        ["/US/84"] = { value = { { hsCode = "8401" } }, ["@nextLink"] = "/api/v2/definitions/crossborder/US/84" },
      }, seen)
      local r, count = c:hs_codes("US", "84")
      assert.same({ "8401" }, codes(r))
      assert.equal(1, count) -- no @recordsetCount: the number of records
      assert.equal(1, #seen)
      seen = {}
      c = client_over({ ["/US/61"] = { ["@recordsetCount"] = 9, value = { { hsCode = "6101" } } } }, seen)
      assert.same({ "6101" }, codes(assert(c:hs_codes("US", "61"))))
      assert.equal(1, #seen)
    end)

    it("refuses a link to another origin (the token would go there) and a body that is no FetchResult", function()
      local seen = {}
      local c = client_over({ ["/US/84"] = { ["@recordsetCount"] = 3, value = { { hsCode = "8401" } },
        ["@nextLink"] = "https://evil.example/api/v2/definitions/crossborder/us/84?%24skip=1" } }, seen)
      local r, err = c:hs_codes("US", "84")
      assert.is_nil(r)
      assert.equal("parse", err.kind)
      assert.truthy(err.message:find("evil.example", 1, true))
      assert.equal(1, #seen)
      c = client_over({ ["/US/85"] = { hello = "world" } }, {})
      r, err = c:hs_codes("US", "85")
      assert.is_nil(r)
      assert.equal("parse", err.kind)
    end)
  end)

  it("resolves every form of link", function()
    local base = "https://h.example:8443/api/v2/definitions/crossborder/US/84?%24top=5"
    assert.equal("https://x.example/p", definitions.resolve(base, "https://x.example/p"))
    assert.equal("https://y.example/q", definitions.resolve(base, "//y.example/q"))
    assert.equal("https://h.example:8443/api/v2/z?a=1", definitions.resolve(base, "/api/v2/z?a=1"))
    assert.equal("https://h.example:8443/api/v2/definitions/crossborder/US/84?%24skip=5",
      definitions.resolve(base, "?%24skip=5"))
    assert.equal("https://h.example:8443/api/v2/definitions/crossborder/US/85",
      definitions.resolve(base, "85"))
  end)
end)
