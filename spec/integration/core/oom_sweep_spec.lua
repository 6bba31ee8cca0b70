-- The fail-after-N sweep (issue 25; after ../shared/repro/embed/host_oom.c):
-- every allocation point of four workloads (the module opened again and a
-- grant; a grant, a create and a read through the core; the same through
-- core.multi; avalara.new and a classify) made to fail in turn, each from
-- then on and each for two allocations only (a passing shortage). Every
-- failure must be a memory error, every exchange added to a multi still
-- reported (none lost, none left running), and the same work must then
-- succeed in the same state (spec/support/oom_sweep.lua, in the host
-- spec/support/host_arm.c). Under `make test-asan` the host runs with the
-- sanitizer runtime and LeakSanitizer fails it on any leak. Under Lua 5.4 and
-- LuaJIT (its JIT off: spec/support/oom_sweep.lua).
local emu = require "spec.support.emulator"
local H = require "spec.support.host"

-- The host is built for the Lua that runs this file and loads this run's
-- module: Lua 5.4 or LuaJIT (spec/run runs it so; LUAS may ask for others:
-- make test-matrix).
local jit = rawget(_G, "jit")
local lua_pc = jit and "luajit" or _VERSION == "Lua 5.4" and "lua5.4"

;(lua_pc and describe or pending)("fail-after-N sweep of the core", function()
  local e, dir, host

  setup(function()
    e = emu.start()
    dir = H.tmpdir()
    host = H.compile("host_arm", dir, nil, lua_pc)
  end)
  teardown(function()
    if e then e:stop() end
    H.rmdir(dir)
  end)

  for _, workload in ipairs { "open", "core", "multi", "client" } do
    for _, width in ipairs { -1, 2 } do
      local what = width < 0 and "from then on" or "for two allocations"
      it(("%s: each allocation point failing %s gives a clean memory error"):format(workload, what), function()
        e:configure { latency_ms = 0 }
        -- started as this run starts interpreters (a sanitizer's runtime preloaded)
        local t0 = os.time()
        local out, code = H.sh(("%s %q %q spec/support/oom_sweep.lua %q %s 0 1 20000 %d"):format(H.launch(host),
          package.cpath, package.path, e.http_url, workload, width))
        assert.equal(0, code, out) -- under ASan: no leak anywhere in the sweep
        local points, memerr, complete = out:match("points=(%d+) memory_errors=(%d+) complete_at=(%w+)")
        assert.is_truthy(points, out)
        assert.is_falsy(out:find("\nn=%d+") or out:find("^n=%d+"), out) -- a non-memory error, a lost result, a broken state
        assert.is_truthy(tonumber(complete), "the sweep reached every point\n" .. out)
        assert.is_truthy(tonumber(points) > 50, out)
        assert.equal(tonumber(points) - 1, tonumber(memerr), out)
        assert.is_truthy(os.time() - t0 < 60, "wall time")
      end)
    end
  end
end)
