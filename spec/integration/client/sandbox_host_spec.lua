-- A C host with a sandboxed lua_State classifies an item (issue 25, defect
-- 8; ../shared/repro/embed/host_sandbox.c): only base, string, table,
-- coroutine and math, the host's require (the core and cjson from shared
-- objects the host opened, avalara.* from lua/) and the host's clock given
-- to avalara.clock.set (spec/support/host_sandbox.c). Lua 5.4 only (the host
-- links liblua5.4); under `make test-asan` it runs with the sanitizer
-- runtime of this run, and LeakSanitizer fails it on any leak.
local emu = require "spec.support.emulator"
local H = require "spec.support.host"
local files = require "spec.support.files"

local ID, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"

local lua54 = _VERSION == "Lua 5.4" and not rawget(_G, "jit")

describe("a C host with a sandboxed state", function()
  if not lua54 then
    pending("the host links Lua 5.4")
    return
  end
  local e, dir, host

  local function run(script, ...)
    local path = files.write(dir .. "/script.lua", script)
    local args = { H.launch(host), assert(package.searchpath("avalara.core", package.cpath)),
      assert(package.searchpath("cjson", package.cpath)), "lua", path }
    for _, a in ipairs { ... } do args[#args + 1] = ("%q"):format(a) end
    return H.sh(table.concat(args, " "))
  end

  setup(function()
    e = emu.start()
    dir = H.tmpdir()
    host = H.compile("host_sandbox", dir, "-ldl")
  end)
  teardown(function()
    if e then e:stop() end
    H.rmdir(dir)
  end)

  it("classifies an item with only base, string, table, coroutine, math and the host's clock", function()
    local out, code = run([[
      local base, id, key = ...
      assert(os == nil and io == nil and package == nil and debug == nil and dofile == nil)
      local clock = require "avalara.clock"
      local ok, err = pcall(clock.now)
      print("no clock: " .. tostring(ok) .. " " .. tostring(err):sub(1, 80))
      local reads, sleeps = 0, 0
      clock.set{ now = function() reads = reads + 1; return host_now() end,
        sleep = function(s) sleeps = sleeps + 1; return host_sleep(s) end }
      local avalara = require "avalara"
      local c = avalara.new{ environment = "local", emulator_url = base, account_id = id, license_key = key,
        company_id = 1001, store = "memory" }
      local m = assert(c:classify({ itemCode = "HS-1", description = "porcelain coffee mug" }, { country = "US" }))
      local done = assert(c:wait(m.id, { timeout = 10, interval = 0.05 }))
      print("classified: " .. done.status .. " " .. done.hsCode)
      print("host clock used: " .. tostring(reads > 0 and sleeps > 0))
      local h = c:start_classify({ itemCode = "HS-2", description = "bicycle" }, { country = "US" })
      for _ = 1, 500 do c:poll(0.01); if h.done then break end end
      print("polled: " .. tostring(h.done) .. " " .. tostring(h.err))
      ok, err = pcall(avalara.new, { environment = "local", emulator_url = base, account_id = id,
        license_key = key, company_id = 1001, store = "file" })
      print("file store: " .. tostring(ok) .. " " .. tostring(err))
    ]], e.http_url, ID, KEY)
    assert(code == 0, out)
    assert.matches("no clock: false avalara.clock: no clock in this Lua state", out, 1, true)
    assert.matches("classified: CLASSIFIED %d+", out)
    assert.matches("host clock used: true", out, 1, true)
    assert.matches("polled: true nil", out, 1, true)
    assert.matches("file store: false [^\n]*the file store needs the io and os libraries", out)
  end)
end)
