-- Opening avalara.core needs neither `require` nor lua-cjson: cjson.encode
-- is looked up when a request body given as a table first needs it, in
-- package.loaded.cjson (what require and luaL_requiref fill), else with
-- `require "cjson"`; without one, only that call raises, naming the ways to
-- give one (issue 25, D7; include/avalara/core.h, docs/embedding.md). Each
-- case runs in a fresh interpreter: the module is cached in this one.
local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs the script in a fresh interpreter that finds only avalara.core on
-- its C path (no cjson), with `require` kept in the local `req`.
local function run(script)
  local dir = package.searchpath("avalara.core", package.cpath):match("^(.*)/avalara/core%.so$")
  local prelude = ("package.cpath = %q; package.path = ''; local req = require\n"):format(dir .. "/?.so")
  local p = assert(io.popen((os.getenv("SPEC_LUA") or "lua5.4") .. " -e " .. quote(prelude .. script) .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

local OPEN = [[
  local core = req "avalara.core"
  local function try(body)
    local ok, err = pcall(core.prepare_request, { url = "https://example.invalid/x", body = body })
    print(ok and "ok" or ("error: " .. tostring(err)))
  end
]]

describe("avalara.core opened without cjson", function()
  it("opens in a state with no require and no cjson; a table body then says how to give an encoder", function()
    local out = run([[
      _G.require = nil
      package.loaded.cjson = nil
    ]] .. OPEN .. [[
      print("opened " .. core.version)
      try("a string body needs no encoder")
      try({ a = 1 })
    ]])
    assert.matches("opened %d+%.%d+%.%d+\nok\n", out)
    assert.matches("error: core.prepare_request: a table 'body' needs a JSON encoder: the state has no 'require' "
      .. "and package.loaded.cjson is not set", out, 1, true)
  end)

  it("with require but no loadable cjson, the error names the package and package.preload.cjson", function()
    local out = run(OPEN .. [[
      print("opened")
      try({ a = 1 })
    ]])
    assert.matches("^opened\n", out)
    assert.matches("install lua-cjson, or set package.preload.cjson or package.loaded.cjson", out, 1, true)
    assert.matches("require \"cjson\" failed: module 'cjson' not found", out, 1, true)
  end)

  it("uses package.loaded.cjson, or package.preload.cjson, when first needed, then keeps it", function()
    local out = run([[
      local calls = 0
      local function encode(t) calls = calls + 1; return '{"a":' .. t.a .. '}' end
      _G.require = nil
    ]] .. OPEN .. [[
      package.loaded.cjson = { encode = encode }
      try({ a = 1 })
      package.loaded.cjson = nil
      try({ a = 2 })
      print("loaded calls " .. calls)
      _G.require = req
      package.loaded["avalara.core"] = nil
      local core2 = req "avalara.core"
      package.preload.cjson = function() return { encode = encode } end
      print(pcall(core2.prepare_request, { url = "https://example.invalid/x", body = { a = 3 } }))
      print("preload calls " .. calls .. " " .. tostring(package.loaded.cjson ~= nil))
    ]])
    assert.matches("^ok\nok\nloaded calls 2\ntrue\tavalara.exchange", out)
    assert.matches("preload calls 3 true", out, 1, true)
  end)
end)
