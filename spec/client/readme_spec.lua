-- The README's library example runs as written against the emulator.
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
end)
