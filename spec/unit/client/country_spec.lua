-- One country check (avalara.country) for every country the library takes,
-- with the code meant for common mistakes (issue 23, item 3).
local country = require "avalara.country"
local item = require "avalara.hs.item"
local items_args = require "avalara.items.args"
local items_model = require "avalara.items.model"
local avalara = require "avalara"

describe("avalara.country", function()
  it("takes two-letter ISO codes in any case, upper-cased", function()
    assert.equal("GB", country.check("gb"))
    assert.equal("DE", country.check("De"))
    assert.is_nil(country.problem("us"))
  end)

  it("names the code meant for each alias, and no alias is an assigned code", function()
    for alias, meant in pairs(country.ALIASES) do
      local code, why = country.check(alias:lower())
      assert.is_nil(code)
      assert.equal("unknown country code '" .. alias .. "' (did you mean " .. meant .. "?)", why)
      assert.equal(true, country.known(meant))
      assert.equal(false, country.known(alias))
    end
    assert.equal("GB", country.ALIASES.UK)
    assert.equal("GR", country.ALIASES.EL)
  end)

  it("suggests the two-letter code of a three-letter one, and rejects unknown codes", function()
    assert.equal("bad country code 'USA' (two letters: did you mean US?)", country.problem("USA"))
    assert.equal("bad country code 'deu' (two letters: did you mean DE?)", country.problem("deu"))
    assert.equal("bad country code 'U1' (two letters, such as US)", country.problem("U1"))
    assert.equal("unknown country code 'QQ' (ISO 3166 alpha-2, such as US)", country.problem("qq", { known = true }))
    -- the library leaves a well-formed code to the service, whose list is the one that counts
    assert.is_nil(country.problem("qq"))
    assert.equal("QQ", country.check("qq"))
    assert.matches("bad country code", country.problem(42))
  end)

  it("is the check of the hs item model (check, body, country_known)", function()
    local ok, err = item.check { itemCode = "A", description = "mug", countryOfDestination = "UK" }
    assert.is_nil(ok)
    assert.equal("input", err.kind)
    assert.equal("countryOfDestination", err.field)
    assert.matches("did you mean GB%?", err.message)
    assert.has_error(function() item.body({ itemCode = "A", description = "mug" }, { company_id = 1, country = "uk" }) end,
      "avalara.item: unknown country code 'UK' (did you mean GB?)")
    assert.equal(false, item.country_known("UK"))
    assert.equal(true, item.country_known("gb"))
  end)

  it("is the check of the Items service's arguments and model", function()
    assert.has_error(function() items_args.countries("client.items:classify", "US,UK") end,
      "client.items:classify: 'countries[2]': unknown country code 'UK' (did you mean GB?)")
    assert.has_error(function() items_args.country("client.items:dismiss", "country", "EL") end,
      "client.items:dismiss: 'country': unknown country code 'EL' (did you mean GR?)")
    assert.same({ "US", "GB" }, items_args.countries("f", { "us", "gb", "US" }))
    local _, why = items_model.build { itemCode = "A", description = "mug",
      classifications = { { productCode = "6109", country = "UK" } } }
    assert.matches("did you mean GB%?", why)
  end)

  it("is the check of the definitions' two-letter countries, before any request", function()
    local client = avalara.new { environment = "local", emulator_url = "http://127.0.0.1:1",
      account_id = "2000000001", license_key = "DEMO-LICENSE-KEY-0001" }
    assert.has_error(function() client:hierarchy("UK", "610910") end)
    local ok, err = pcall(client.hierarchy, client, "UK", "610910")
    assert.is_false(ok)
    assert.matches("did you mean GB%?", tostring(err))
  end)
end)
