-- The README's core example runs as written against the emulator.
describe("README core example", function()
  local emu = require "spec.support.emulator"
  local e

  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)

  it("classifies the t-shirt and prints no secret", function()
    local f = assert(io.open("README.md"))
    local source = assert(f:read("*a"):match("```lua\n(.-)```"), "README has a ```lua block")
    f:close()
    local printed = {}
    local env = setmetatable({
      print = function(...)
        local parts = {}
        for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
        printed[#printed + 1] = table.concat(parts, "\t")
      end,
      os = setmetatable({ getenv = function(name)
        if name == "AVALARA_EMULATOR_URL" then return e.http_url end
        return os.getenv(name)
      end }, { __index = os }),
    }, { __index = _G })
    local chunk = assert((loadstring or load)(source, "=README", "t", env))
    if setfenv then setfenv(chunk, env) end
    chunk()
    assert.truthy(printed[1]:match("^avalara%.token %(Bearer, scope hs%-code%-classification"))
    assert.truthy(printed[2]:match("^610910\tT%-shirts"))
    for _, line in ipairs(printed) do
      assert.falsy(line:find("DEMO-LICENSE-KEY-0001", 1, true))
    end
  end)
end)
