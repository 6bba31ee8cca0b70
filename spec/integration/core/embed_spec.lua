-- Embedding the core in a C host (issue 25; examples/embed/host.c,
-- include/avalara/core.h, docs/embedding.md): `make install-static` installs
-- the header, the static library and a pkg-config file naming PREFIX, and a
-- host builds from them alone; the example host, linked statically, opens
-- the module in several threads at once (a barrier before the first
-- require), each in its own lua_State, and runs grants and classifications
-- against the emulator under Lua 5.4 and LuaJIT; built with ThreadSanitizer
-- (when its runtime is installed: libtsan2 on Debian) or run under
-- valgrind's helgrind, 8 threads report no race (defect 4).
local emu = require "spec.support.emulator"
local H = require "spec.support.host"

local sh = H.sh

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs the host against the emulator: every thread's rounds succeeded.
local function check_run(host, base, threads, env)
  local out, code = sh(("%s %s %s %d 2"):format(env or "", quote(host), quote(base), threads))
  assert.equal(0, code, out)
  assert.matches(("avalara%%.core %%d+%%.%%d+%%.%%d+: %d threads, 0 failed"):format(threads), out)
  return out
end

-- ThreadSanitizer works here: a program built with it runs.
local function tsan_available(dir)
  local out, code = sh(("printf 'int main(void) { return 0; }\\n' >%s/t.c && cc -fsanitize=thread %s/t.c -o %s/t && %s/t")
    :format(dir, dir, dir, dir))
  return code == 0, out
end

-- The hosts build for Lua 5.4 and LuaJIT whatever runs this file: once a run
-- (spec/run runs it under Lua 5.4 only; LUAS may ask for more: make test-matrix),
-- and not in the sanitizer and valgrind runs (the hosts are not built with
-- them; make test runs it).
local once = _VERSION == "Lua 5.4" and not rawget(_G, "jit") and os.getenv("SPEC_SANITIZED") ~= "1"

;(once and describe or pending)("a C host embedding the core", function()
  local e, dir

  setup(function()
    e = emu.start()
    dir = H.tmpdir()
  end)
  teardown(function()
    if e then e:stop() end
    H.rmdir(dir)
  end)
  before_each(function() e:configure { latency_ms = 0 } end)

  it("builds from what make install-static installs (header, libavalara_core.a, avalara-core.pc)", function()
    local prefix = dir .. "/usr"
    local out, code = sh("make --no-print-directory -s install-static LUA=lua5.4 PREFIX=" .. quote(prefix))
    assert.equal(0, code, out)
    local pc = assert(io.open(prefix .. "/lib/pkgconfig/avalara-core.pc")):read("*a")
    assert.matches("prefix=" .. prefix, pc, 1, true)
    assert.matches("Requires: lua5.4 libcurl", pc, 1, true)
    out, code = sh(("PKG_CONFIG_PATH=%s/lib/pkgconfig cc -O1 -Wall -Wextra -Werror examples/embed/host.c "
      .. "$(PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --cflags --libs avalara-core) -l:liblua5.4-cjson.so.0 -o %s/host")
      :format(prefix, prefix, dir))
    assert.equal(0, code, out)
    -- no avalara/core.so anywhere: the module is in the program
    assert.is_falsy(sh("ldd " .. dir .. "/host"):find("core.so", 1, true))
    check_run(dir .. "/host", e.http_url, 4)
  end)

  for _, lua in ipairs { "lua5.4", "luajit" } do
    it(lua .. ": 8 threads open the module at once and classify", function()
      local out, code = sh("make --no-print-directory -s -C examples/embed LUA=" .. lua)
      assert.equal(0, code, out)
      check_run("build/" .. lua .. "/embed/host", e.http_url, 8)
    end)
  end

  for _, lua in ipairs { "lua5.4", "luajit" } do
    -- helgrind sees what TSan cannot here (libluajit is not instrumented: making states at once
    -- raced in its allocator's set-up); spec/support/helgrind.supp names the two reports that are
    -- not thread errors of any program (libcurl's atomic spinlock, p11-kit's exit)
    it(lua .. ": under valgrind's helgrind, 8 threads report no data race", function()
      local out, code = sh("make --no-print-directory -s -C examples/embed LUA=" .. lua)
      assert.equal(0, code, out)
      out = check_run("build/" .. lua .. "/embed/host", e.http_url, 8, "valgrind --tool=helgrind --error-exitcode=9 "
        .. "--suppressions=spec/support/helgrind.supp")
      assert.matches("ERROR SUMMARY: 0 errors", out)
    end)
  end

  for _, lua in ipairs { "lua5.4", "luajit" } do
    it(lua .. ": under ThreadSanitizer, 8 threads report no data race", function()
      local ok, why = tsan_available(dir)
      if not ok then
        pending("no ThreadSanitizer runtime (Debian: libtsan2): " .. why)
        return
      end
      local out, code = sh("make --no-print-directory -s -j2 -C examples/embed SANITIZE=thread LUA=" .. lua)
      assert.equal(0, code, out)
      out = check_run("build/tsan/" .. lua .. "/embed/host", e.http_url, 8,
        "TSAN_OPTIONS='halt_on_error=1 exitcode=66'")
      assert.is_falsy(out:find("ThreadSanitizer", 1, true), out)
    end)
  end
end)
