-- The README's library and Items flow examples run as written against the emulator.
describe("README library example", function()
  local emu = require "spec.support.emulator"
  local readme = require "spec.support.readme"
  local e

  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)

  it("classifies, batches, lists, looks up and prints no secret", function()
    local printed = readme.run(readme.block("Using the library"), e.http_url)
    assert.same({ "610910\tT-shirts, singlets and other vests; of cotton, knitted or crocheted",
      "1\t691110", "2\t871200", "2\t0", "86\t86", "52\tCotton", "4" }, { (table.unpack or unpack)(printed, 1, 7) })
    assert.truthy(printed[8]:match("^avalara token %(Bearer, scope hs%-code%-classification, expires at "))
    assert.equal(8, #printed)
    for _, line in ipairs(printed) do
      assert.falsy(line:find("DEMO-LICENSE-KEY-0001", 1, true))
      assert.falsy(line:find(("%x"):rep(32)))
    end
  end)

  it("the Items flow: classifies for three countries, reads codes, verifies, runs a catalog", function()
    e:reset()
    e:configure { classification_delay = 0.2 }
    local printed = readme.run(readme.block("The Items flow"), e.http_url)
    assert.same({ "2\t0", "DE\tTARIC\t610910", "JP\tHS\t610910", "US\tHTS\t610910", "691110", "24", "1\t0",
      "150\t150\t150" }, printed)
  end)
end)
