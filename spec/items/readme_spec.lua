-- The README's Items flow example runs as written against the emulator.
describe("README Items flow example", function()
  local emu = require "spec.support.emulator"
  local readme = require "spec.support.readme"
  local e

  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)

  it("creates, classifies for three countries, reads codes, verifies and runs a catalog", function()
    e:configure { classification_delay = 0.2 }
    local printed = readme.run(readme.block("The Items flow"), e.http_url)
    assert.same({ "2\t0", "DE\tTARIC\t610910", "JP\tHS\t610910", "US\tHTS\t610910", "691110", "24", "1\t0",
      "150\t150\t150" }, printed)
  end)
end)
