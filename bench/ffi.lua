-- The FFI binding (avalara.ffi) against the classic one, on the fixed-body
-- server (bench/fixed_server.lua: the same 361-byte model every time, plain
-- HTTP, keep-alive), under LuaJIT. Two reports, neither a wall clock:
--
--   luajit bench/ffi.lua traces [N]       N calls of binding.request (and of
--       the prepared exchange's raw path) under jit.v: the traces compiled,
--       and every abort with its reason (NYI, a C function, ...)
--   luajit bench/ffi.lua callgrind [N M [MODE...]]  instructions per call of
--       core.request ("core") and binding.request ("ffi") over HTTP, and of a
--       prepared exchange fed a canned answer: the classic one through
--       request()/finish() ("exchange"), the FFI one through wire()/status/
--       header/body/conclude() ("prepared"); valgrind --tool=callgrind runs N
--       and M calls, (Ir(M) - Ir(N)) / (M - N) is one call (setup cancels)
--   luajit bench/ffi.lua calls MODE URL TOKEN N   (what callgrind runs)
--
-- LUA_PATH='lua/?.lua;lua/?/init.lua;./?.lua;;' LUA_CPATH='build/luajit/?.so;;'
-- (docs/performance.md, "LuaJIT traces"; bench/README.md).
local what = arg[1] or "traces"
local TOKEN = "0123456789abcdef0123456789abcdef"
local PATH = "/api/v2/companies/1001/classifications/hs/1001-TS-1-US"

local function calls(mode, url, n)
  local core = require "avalara.core"
  local binding = require "avalara.ffi"
  assert(binding, "the FFI binding does not load here")
  local args = { method = "GET", url = url, token = TOKEN }
  if mode == "core" or mode == "ffi" then
    local request = mode == "ffi" and binding.request or core.request
    for _ = 1, n do
      local status, model = request(args)
      if status ~= 200 or model.status ~= "CLASSIFIED" then error("bad answer: " .. tostring(model)) end
    end
  elseif mode == "prepared" then
    -- the raw path a cosocket transport takes, with a canned answer (no socket here)
    local fixed = require "bench.fixed_server"
    for _ = 1, n do
      local ex = binding.prepare_request(args)
      assert(ex:wire())
      ex:status(200)
      ex:header("Content-Type", "application/json")
      ex:body(fixed.MODEL)
      local status, model = ex:conclude()
      if status ~= 200 or model.status ~= "CLASSIFIED" then error("bad answer: " .. tostring(model)) end
    end
  elseif mode == "exchange" then
    -- the classic exchange with the same canned answer: what a Lua transport pays today
    local fixed = require "bench.fixed_server"
    local answer = { status = 200, headers = { ["Content-Type"] = "application/json" }, body = fixed.MODEL }
    for _ = 1, n do
      local ex = core.prepare_request(args)
      assert(ex:request())
      local status, model = ex:finish(answer)
      if status ~= 200 or model.status ~= "CLASSIFIED" then error("bad answer: " .. tostring(model)) end
    end
  else
    error("mode: core, ffi, prepared or exchange")
  end
end

if what == "calls" then
  calls(arg[2], arg[3], tonumber(arg[5]))
  return
end

local emu = require "spec.support.emulator"
local fixed = require "bench.fixed_server"
local util = require "bench.util"

local e = emu.start { workers = 1 }
local server = fixed.start(e.ca_file:match("^(.*)/[^/]+$"))
local url = server.http_url .. PATH

local function traces(n)
  local log = os.tmpname()
  local v = require "jit.v"
  for _, mode in ipairs { "ffi", "prepared" } do
    v.on(log)
    calls(mode, url, n)
    v.off()
    local f = assert(io.open(log))
    local text = f:read("*a")
    f:close()
    local started, aborts, reasons = 0, 0, {}
    for line in text:gmatch("[^\n]+") do
      if line:match("^%[TRACE%s+%d+") then started = started + 1 end
      local where, why = line:match("^%[TRACE %-%-%- (%S+.-) %-%- (.-)%]$")
      if why then
        aborts = aborts + 1
        local key = why .. "  (" .. where .. ")"
        reasons[key] = (reasons[key] or 0) + 1
      end
    end
    print(("%s: %d calls, %d traces compiled, %d aborted"):format(mode, n, started, aborts))
    local keys = {}
    for k in pairs(reasons) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do print(("  %3d x %s"):format(reasons[k], k)) end
    if os.getenv("BENCH_VERBOSE") then io.stderr:write(text) end
  end
  os.remove(log)
end

local function instructions(mode, n)
  local out = os.tmpname()
  local cmd = ("valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=%s "
    .. "luajit bench/ffi.lua calls %s '%s' %s %d"):format(out, mode, url, TOKEN, n)
  local text, ok = util.capture(cmd)
  local ir = text:match("Collected : (%d+)")
  os.remove(out)
  if not ok or not ir then error(mode .. " under callgrind failed: " .. text) end
  return tonumber(ir)
end

local ok, err = pcall(function()
  if what == "traces" then
    traces(tonumber(arg[2]) or 2000)
  elseif what == "callgrind" then
    local n, m = tonumber(arg[2]) or 200, tonumber(arg[3]) or 1200
    local modes = { select(4, unpack(arg)) }
    if #modes == 0 then modes = { "core", "ffi", "exchange", "prepared" } end
    for _, mode in ipairs(modes) do
      local a, b = instructions(mode, n), instructions(mode, m)
      print(("%-8s %d calls: %d Ir, %d calls: %d Ir -> %.0f instructions per call"):format(mode, n, a, m, b,
        (b - a) / (m - n)))
    end
  else
    error("usage: luajit bench/ffi.lua traces [N] | callgrind [N M] | calls MODE URL TOKEN N")
  end
end)
server:stop()
e:stop()
if not ok then error(err, 0) end
