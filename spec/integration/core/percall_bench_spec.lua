-- make bench's per-call set (bench/percall_fixed.lua, issue 27 item 4), run
-- for a handful of calls against the real fixed-body nginx: every contender
-- (the C floor, lua-curl under Lua 5.1 and LuaJIT, LuaSocket + LuaSec kept
-- alive, `core.request` and the client under Lua 5.4 and LuaJIT) answers
-- over HTTP and HTTPS, the section ends with the goals of issue 27, each with
-- its ratio and met or not, and AVALARA_BINDING chooses the LuaJIT binding.
-- No timing is asserted: only that every figure is there.
local emu = require "spec.support.emulator"

local LUA = os.getenv("SPEC_LUA") or "lua5.4"
local ROOT = emu.repo_root()

local function sh(cmd)
  local p = assert(io.popen("cd " .. emu.shell_quote(ROOT) .. " && " .. cmd .. " 2>&1"))
  local out = p:read("*a")
  return p:close(), out
end

local function exists(path)
  local f = io.open(ROOT .. "/" .. path)
  if f then f:close() end
  return f ~= nil
end

-- What the bench needs beyond `make test`: Debian's lua-curl (make bench-tools installs it) and both builds.
local function missing()
  if not (exists("build/lua5.4/avalara/core.so") and exists("build/luajit/avalara/core.so")) then
    return "needs `make` and `make LUA=luajit`"
  end
  if not sh("lua5.1 -e 'require \"curl\"' && luajit -e 'require \"curl\"'") then
    return "needs Debian's lua-curl (make bench-tools)"
  end
  if not sh("mkdir -p build/bench && cc -O2 bench/percall_libcurl.c $(pkg-config --cflags --libs libcurl)"
      .. " -o build/bench/percall_libcurl") then
    return "cannot build bench/percall_libcurl.c"
  end
end

-- Runs the per-call set once (1 round, a few calls) with `env`; returns the section it wrote.
local function run(env)
  local out_file = os.tmpname()
  local ok, out = sh(("env %s BENCH_ROUNDS=1 BENCH_CALLS=30 BENCH_CPU=0 BENCH_OUT=%s"
    .. " LUA_PATH='lua/?.lua;lua/?/init.lua;./?.lua;;' LUA_CPATH='build/lua5.4/?.so;;' %s bench/percall_fixed.lua")
    :format(env or "", emu.shell_quote(out_file), LUA))
  local text = emu.read_file(out_file) or ""
  os.remove(out_file)
  assert(ok, out)
  return text
end

-- The figures of the row whose label contains `label` (nil when there is none).
local function row(text, label)
  for line in text:gmatch("[^\n]+") do
    local cells = {}
    for cell in line:gmatch("[^|]+") do cells[#cells + 1] = cell:match("^%s*(.-)%s*$") end
    if line:sub(1, 2) == "| " and cells[1]:find(label, 1, true) then
      local figures = {}
      for i = 2, #cells do figures[#figures + 1] = tonumber(cells[i]) end
      return figures
    end
  end
end

local function ffi_loads()
  local ok, out = sh("env LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/luajit/?.so;;' luajit -e "
    .. "'local ok, b = pcall(require, \"avalara.ffi\") io.write(ok and type(b) == \"table\" and \"ffi\" or \"no\")'")
  return ok and out == "ffi"
end

describe("make bench's per-call set (bench/percall_fixed.lua)", function()
  local why = missing()
  if why then
    pending(why)
    return
  end

  local text = run()

  it("measures every contender over HTTP and HTTPS", function()
    assert.truthy(text:find("<!-- begin percall-fixed -->", 1, true))
    for _, label in ipairs { "(the floor)", "Debian lua-curl + lua-cjson (Lua 5.1)", "LuaSocket + LuaSec + lua-cjson, one kept-alive",
        "`core.request` (Lua 5.4)", "`client:classification(id)` (Lua 5.4)", "Debian lua-curl + lua-cjson (LuaJIT)",
        "`client:classification(id)` (LuaJIT" } do
      local f = row(text, label)
      assert(f, "no row for " .. label .. " in\n" .. text)
      assert.equal(6, #f, label)
      for _, v in ipairs(f) do assert(v > 0 and v < math.huge, label) end
    end
    if ffi_loads() then -- both bindings, the client on the one it reports
      for _, label in ipairs { "the FFI binding's `request` (LuaJIT)", "`client:classification(id)` (LuaJIT, ffi binding)",
          "`core.request` (LuaJIT, classic binding)", "`client:classification(id)` (LuaJIT, classic binding)" } do
        assert(row(text, label), "no row for " .. label .. " in\n" .. text)
      end
    else
      assert(row(text, "`core.request` (LuaJIT, classic binding)"), text)
    end
  end)

  it("says where the processes ran", function()
    assert.truthy(text:find("every client pinned to CPU 0, the server to CPU 0", 1, true))
  end)

  it("ends with the goals of issue 27, each with its ratio over HTTP and HTTPS, met or not", function()
    local goals = text:match("### Goals\n(.*)$")
    assert(goals, text)
    for _, goal in ipairs { "`core.request` ≥ lua-curl + lua-cjson (Lua 5.4) | 27 |",
        "client ≥ 0.95× `core.request` (Lua 5.4) | 27 |",
        ("client ≥ 0.90× the floor (LuaJIT outside nginx, %s binding) | 27 |"):format(ffi_loads() and "ffi" or "classic") } do
      local line = goals:match("| " .. goal:gsub("%p", "%%%0") .. "[^\n]*")
      assert(line, "no goal " .. goal .. " in\n" .. goals)
      local marks = 0
      for _ in line:gmatch("%d%.%d%d× %(met%)") do marks = marks + 1 end
      for _ in line:gmatch("%d%.%d%d× %(%*%*not met%*%*%)") do marks = marks + 1 end
      assert.equal(2, marks, line)
    end
  end)

  it("runs LuaJIT on the binding AVALARA_BINDING names", function()
    local classic = run("AVALARA_BINDING=classic")
    assert(row(classic, "`core.request` (LuaJIT, classic binding)"), classic)
    assert(row(classic, "`client:classification(id)` (LuaJIT, classic binding)"), classic)
    assert.falsy(classic:find("FFI", 1, true))
    -- the contender itself refuses a binding it cannot load rather than measure the other one
    local ok, out = sh("env AVALARA_BINDING=ffi LUA_PATH='lua/?.lua;lua/?/init.lua;./?.lua;;'"
      .. " LUA_CPATH='build/luajit/?.so;;' luajit bench/percall.lua core http://127.0.0.1:1/x t none 1")
    if ffi_loads() then
      assert.truthy(out:find("percall: binding ffi", 1, true), out)
    else
      assert.falsy(ok)
      assert.truthy(out:find("AVALARA_BINDING=ffi but avalara.ffi does not load", 1, true), out)
    end
  end)
end)
