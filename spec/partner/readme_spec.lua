-- The README's partner example runs as written against the emulator.
describe("README partner example", function()
  local emu = require "spec.support.emulator"
  local readme = require "spec.support.readme"
  local e

  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)

  it("connects, classifies on the customer's behalf, lists, disconnects, and prints no secret", function()
    local printed = readme.run(readme.block("Partner integrations"), e.http_url)
    assert.same({ "connected\t1001\tCompanyUser", "610910", "1", "true" }, printed)
    assert.equal(1, e:counters().routes.oauth_revoke)
    for _, line in ipairs(printed) do
      assert.falsy(line:find("demo-partner-secret", 1, true))
      assert.falsy(line:find(("%x"):rep(32)))
    end
  end)
end)
