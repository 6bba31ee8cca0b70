-- The README's core example runs as written against the emulator.
describe("README core example", function()
  local emu = require "spec.support.emulator"
  local readme = require "spec.support.readme"
  local e

  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)

  it("classifies the t-shirt and prints no secret", function()
    local printed = readme.run(readme.block("Using the C core"), e.http_url)
    assert.truthy(printed[1]:match("^avalara%.token %(Bearer, scope hs%-code%-classification"))
    assert.truthy(printed[2]:match("^610910\tT%-shirts"))
    for _, line in ipairs(printed) do
      assert.falsy(line:find("DEMO-LICENSE-KEY-0001", 1, true))
    end
  end)
end)
