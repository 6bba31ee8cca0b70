-- Every script in examples/ runs as it is against the emulator, under the
-- interpreter running this spec, and prints no secret.
local emu = require "spec.support.emulator"

-- The interpreter and module build of this run (spec/run sets SPEC_LUA and
-- LUA_CPATH, e.g. to the sanitizer build), else the default build.
local lua = os.getenv("SPEC_LUA") or (jit and "luajit" or "lua5.4")
local paths = os.getenv("LUA_CPATH") and "" or ("LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s/?.so;;' ")
  :format(jit and "build/luajit" or "build/lua5.4")

local function run(e, script, args)
  local out = os.tmpname()
  local cmd = ("AVALARA_EMULATOR_URL=%s %s%s examples/%s %s >%s 2>&1"):format(e.http_url, paths, lua, script,
    args or "", out)
  local ok = os.execute(cmd)
  local f = assert(io.open(out))
  local text = f:read("*a")
  f:close()
  os.remove(out)
  return ok == true or ok == 0, text
end

describe("examples/", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)

  local expected = {
    ["classify.lua"] = { args = "\"men's cotton t-shirt\" US", out = "^610910\tT%-shirts" },
    ["batch.lua"] = { out = "TS%-1\tCLASSIFIED\t610910\tT%-shirts.-5 ok, 0 failed" },
    ["lookup.lua"] = { out = "^21 sections, I to XXI\n61  Apparel.-\n  6109  .-\n    610910  T%-shirts.-"
      .. "\n2 of 2 codes under heading 6109\nsection XI has chapter 61: Apparel" },
    ["token.lua"] = { out = "avalara token %(Bearer, scope hs%-code%-classification" },
    -- under latency, with their loop's timings: async_spec.lua
    ["game_loop.lua"] = { elsewhere = true },
    ["luv_loop.lua"] = { elsewhere = true },
    ["frames.lua"] = { elsewhere = true }, -- their shared part
  }

  it("has an expectation for every script", function()
    for name in io.popen("ls examples"):lines() do
      if name:match("%.lua$") then assert.truthy(expected[name], "no spec for examples/" .. name) end
    end
  end)

  for name, want in pairs(expected) do
    if not want.elsewhere then it(name .. " runs and prints what it says", function()
      local ok, text = run(e, name, want.args)
      assert.is_true(ok, text)
      assert.truthy(text:find(want.out), text)
      assert.falsy(text:find("DEMO-LICENSE-KEY", 1, true))
      assert.falsy(text:find(("%x"):rep(32)), "an access token (32 hex digits) was printed")
    end) end
  end
end)
