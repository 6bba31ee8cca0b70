-- LuaJIT traces on the OpenResty hot path (issue 27): `client:classification`
-- over cosockets, in a real nginx with `jit.v` logging every trace, must
-- compile without aborting in the library's code. A trace that aborts is
-- retried and then blacklisted: that code then runs in the interpreter on
-- every request (an abort in the header loop once cost /lib about a fifth
-- of its instructions). Stitching over a classic C function (the cosocket
-- calls of Debian's ngx_lua, socket.gettime, string.find with a pattern) is
-- not an abort: the trace ends there and the next one goes on.
--
-- Tolerated, and why (docs/openresty.md, "Traces"):
--   "NYI: return to lower frame"  a trace that began after a stitched
--       classic C call (a cosocket call that yields) returns below the
--       frame it began in; LuaJIT 2.1 cannot record that. The code around
--       it is compiled by the traces on either side.
--   "error thrown or hook called during recording"  the coroutine yields
--       inside a cosocket call while a trace records (nginx resumes it
--       later): LuaJIT stops that recording.
-- The subrequest transport also tolerates, in `avalara.transport.lua`'s
-- `feed` only, the aborts of its `pairs` walk over nginx's `res.header`
-- ("inner loop in root trace", "leaving loop in root trace": a loop of a
-- few headers; it runs, partly interpreted, and is not otherwise avoidable:
-- nginx gives the headers as that table).
-- Any other abort in lua/avalara/ (inner loops, "leaving loop", NYI
-- functions, unroll limits) counts against the place its trace started:
-- LuaJIT retries an aborted start a few times, then blacklists it (that
-- code then runs interpreted for good). A place with 3 or more aborts
-- fails, with the log lines; one or two are a short loop (a `pairs` over
-- a request's few headers) whose recording began on its last iteration
-- and compiled when retried.
local emu = require "spec.support.emulator"
local nginx = require "spec.support.nginx"

local CONF = [[
{{PREAMBLE}}
worker_processes 1;
events { worker_connections 64; }
http {
    {{HTTP_BASICS}}
    lua_shared_dict avalara_tokens 1m;
    upstream avalara_api { server {{EMULATOR_HOSTPORT}}; keepalive 8; }
    init_by_lua_block {
        -- opened here (as the master's user); the worker inherits the log
        require("jit.v").on("{{TMP}}/jit.log")
        client = require("avalara").new { environment = "local", emulator_url = "{{HTTP}}",
            account_id = "2000000001", license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001,
            shared_dict = "avalara_tokens" }
        sub_client = require("avalara").new { environment = "local", emulator_url = "{{HTTP}}",
            account_id = "2000000001", license_key = "DEMO-LICENSE-KEY-0001", company_id = 1001,
            shared_dict = "avalara_tokens", transport = require("avalara.openresty.subrequest").transport("/_avalara") }
    }
    server {
        listen 127.0.0.1:{{PORT}};
        default_type text/plain;
        location = /classify {
            content_by_lua_block {
                local m, err = client:classify({ itemCode = "TS-1", description = "men's cotton t-shirt" },
                    { country = "US" })
                if m then m, err = client:wait(m, { timeout = 20, interval = 0.05 }) end
                if not m then ngx.status = 502; return ngx.say(err.kind, " ", err.message) end
                ngx.say(m.hsCode)
            }
        }
        {{SUBREQUEST_LOCATIONS}}
        location = /lib {
            content_by_lua_block {
                local n = tonumber(ngx.var.arg_n) or 1
                local c = ngx.var.arg_via == "subrequest" and sub_client or client
                local model, err
                for _ = 1, n do
                    model, err = c:classification("1001-TS-1-US")
                    if not model then ngx.status = 502; return ngx.say(err.kind, " ", err.message) end
                end
                ngx.say(model.hsCode)
            }
        }
    }
}
]]

-- The library's module files, by the name jit.v gives (the file's base name).
local function library_files()
  local names = {}
  local p = assert(io.popen("find " .. emu.repo_root() .. "/lua/avalara -name '*.lua'"))
  for path in p:lines() do names[path:match("([^/]+)$")] = true end
  p:close()
  return names
end

local TOLERATED = {
  ["NYI: return to lower frame"] = true,
  ["error thrown or hook called during recording"] = true,
}

describe("the OpenResty hot path's traces", function()
  local e, n

  setup(function()
    e = emu.start()
    e:configure { classification_delay = 0 }
    n = nginx.start(CONF, { HTTP = e.http_url, EMULATOR_HOSTPORT = e.http_url:match("//(.+)$") })
    local status, body = n:get("/classify") -- the classification the hot path reads
    assert.equal(200, status, body)
  end)
  teardown(function()
    if n then n:stop() end
    if e then e:stop() end
  end)

  -- The log's lines from `from` on: the aborts that repeat (3 or more at one place) and are not
  -- tolerated (`also(where, why)` tolerates more), and the number of traces compiled.
  local function check(log, from, also)
    local compiled, bad, ours, aborts, started, inner = 0, {}, library_files(), {}, {}, {}
    for line in log:sub(from):gmatch("[^\n]+") do
      -- "[TRACE  12 (9/stitch) cosocket.lua:51 -> 4]" / "[TRACE --- (13/stitch) cosocket.lua:322 -- why at ...]"
      local rest = line:match("^%[TRACE %-%-%- (.*)%]$")
      if rest then
        rest = rest:gsub("^%(%S+%) ", "")
        local where, why, at = rest:match("^(%S+) %-%- (.-) at (%S+)$")
        if not where then where, why = rest:match("^(%S+) %-%- (.*)$") end
        if not where or (ours[where:match("^([^:]+)")] and not TOLERATED[why] and not (also and also(where, why))) then
          where = where or line
          aborts[where] = (aborts[where] or 0) + 1
          -- a trace begun at a function's entry that reaches its loop before the loop has a trace
          if why == "inner loop in root trace" and at then inner[where] = at end
          if aborts[where] == 3 then bad[#bad + 1] = line end
        end
      elseif line:find("^%[TRACE%s+%d+ ") then
        compiled = compiled + 1
        local file, at = (line:match("^%[TRACE%s+%d+ %(%S+%) (%S+:%d+)") or line:match("^%[TRACE%s+%d+ (%S+:%d+)")
          or ""):match("^(.*):(%d+)$")
        if file and line:find(" loop%]$") then
          started[file] = started[file] or {}
          started[file][#started[file] + 1] = tonumber(at)
        end
      end
    end
    -- Which of a function's entry and its loop gets hot first varies from run to run: when the
    -- entry does, its trace aborts at the loop ("inner loop in root trace") until the loop has a
    -- trace of its own, then links to it. Only an abort whose loop never compiled is lost work.
    -- (jit.v dates the loop's trace at its `while` line, the abort at the first line inside)
    local function loop_compiled(where, at)
      local file, entry = where:match("^(.*):(%d+)$")
      local to = at:match(":(%d+)$")
      for _, l in ipairs(started[file] or {}) do
        if l >= tonumber(entry) and l <= tonumber(to) then return true end
      end
      return false
    end
    local kept = {}
    for _, line in ipairs(bad) do
      local rest = line:match("^%[TRACE %-%-%- (.*)%]$")
      local where = rest and rest:gsub("^%(%S+%) ", ""):match("^(%S+)")
      if not (where and inner[where] and loop_compiled(where, inner[where])) then kept[#kept + 1] = line end
    end
    return kept, compiled
  end

  -- The lines of `avalara.transport.lua`'s `feed` (its first and last).
  local function feed_lines()
    local first, at = nil, 0
    for line in io.lines(emu.repo_root() .. "/lua/avalara/transport/lua.lua") do
      at = at + 1
      if line:find("^function M%.feed%(") then first = at end
      if first and at > first and line == "end" then return first, at end
    end
    error("no feed in avalara.transport.lua")
  end

  local seen = 1 -- where the next test's part of the log begins

  it("compiles client:classification over cosockets without aborts in the library", function()
    -- requests of several calls each, and single calls: LuaJIT's counters
    -- (hotloop 56, hotexit 10) make every trace of the path hot
    for _ = 1, 3 do assert.equal(200, (n:get("/lib?n=100"))) end
    for _ = 1, 60 do assert.equal(200, (n:get("/lib"))) end
    local log = emu.read_file(n.tmp .. "/jit.log")
    local bad, compiled = check(log, 1)
    seen = #log + 1
    assert(compiled > 10, "few traces compiled:\n" .. log)
    assert.same({}, bad, "traces aborted on the hot path:\n" .. log)
  end)

  it("compiles it over subrequests with no other abort than feed's header walk", function()
    for _ = 1, 3 do assert.equal(200, (n:get("/lib?via=subrequest&n=100"))) end
    for _ = 1, 60 do assert.equal(200, (n:get("/lib?via=subrequest"))) end
    local first, last = feed_lines()
    local log = emu.read_file(n.tmp .. "/jit.log")
    local bad, compiled = check(log, seen, function(where, why)
      local line = tonumber(where:match("^lua%.lua:(%d+)$"))
      return line and line >= first and line <= last
        and (why == "inner loop in root trace" or why == "leaving loop in root trace")
    end)
    assert(compiled > 0, "no trace compiled:\n" .. log:sub(seen))
    assert.same({}, bad, "traces aborted on the subrequest path:\n" .. log:sub(seen))
  end)
end)
