-- The module skeleton: loads from the build folder of the running Lua's ABI.
describe("avalara.core", function()
  local core = require "avalara.core"

  it("has a semantic version string", function()
    assert.is_string(core.version)
    assert.truthy(core.version:match("^%d+%.%d+%.%d+"))
  end)

  it("reports the libcurl it was linked with", function()
    assert.is_string(core.curl_version)
    assert.truthy(core.curl_version:match("^libcurl/%d+%.%d+"))
  end)

  it("was loaded from the build folder of this Lua", function()
    local dir = (jit and "luajit") or _VERSION:gsub("Lua ", "lua")
    local path = package.searchpath("avalara.core", package.cpath)
    -- build/<lua>/ or, for the sanitizer build, build/asan/<lua>/
    assert.truthy(path:match("^build/") and path:find("/" .. dir .. "/avalara/core.so", 1, true), path)
  end)
end)
