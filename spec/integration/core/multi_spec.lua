-- core.multi: exchanges that progress without blocking, against the
-- emulator over libcurl.
local core = require "avalara.core"
local socket = require "socket"
local emu = require "spec.support.emulator"

local ID, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"
-- under valgrind or a sanitizer the clock means nothing: the timings are not checked there
local TIMED = os.getenv("SPEC_SANITIZED") ~= "1"

-- Seconds this process has waited for a CPU while runnable (the examples' loop figures).
local cpu_wait = require("examples.frames").cpu_wait
local SECTIONS = "/api/v2/definitions/crossborder/sections"

-- CPU seconds of this process (user + system), from /proc.
local function cpu_seconds()
  local f = io.open("/proc/self/stat")
  if not f then return os.clock() end
  local stat = f:read("*a")
  f:close()
  local utime, stime = stat:match("^%d+ %b() %S+" .. (" %S+"):rep(10) .. " (%d+) (%d+)")
  return (tonumber(utime) + tonumber(stime)) / 100
end

describe("core.multi", function()
  local e, token

  setup(function()
    e = emu.start()
    token = assert(core.client_credentials { token_url = e.http_url .. "/connect/token", client_id = ID,
                                             client_secret = KEY })
  end)
  teardown(function()
    if token then token:close() end
    if e then e:stop() end
  end)
  before_each(function() e:configure { latency_ms = 0 } end)

  local function drain(m, limit)
    local done, deadline = {}, socket.gettime() + (limit or 20)
    while m:pending() > 0 and socket.gettime() < deadline do
      for _, entry in ipairs(m:poll(0.05)) do done[#done + 1] = entry end
    end
    return done
  end

  it("runs every request added, at most `concurrency` at once, and reports each once by its handle", function()
    local m = core.multi { concurrency = 4, timeout = 10 }
    local want = {}
    for i = 1, 10 do want[m:add { url = e.http_url .. SECTIONS, token = token }] = i end
    assert.equal(10, m:pending())
    assert.equal(0, m:running()) -- nothing starts before poll
    local seen, max_running = {}, 0
    while m:pending() > 0 do
      for _, entry in ipairs(m:poll(0.05)) do
        assert.is_nil(seen[entry.handle])
        seen[entry.handle] = true
        assert.equal(200, entry.status)
        assert.equal(21, entry.body["@recordsetCount"])
        assert.is_table(entry.headers)
      end
      max_running = math.max(max_running, m:running())
    end
    local n = 0
    for h in pairs(seen) do
      assert.is_truthy(want[h])
      n = n + 1
    end
    assert.equal(10, n)
    assert.is_true(max_running <= 4)
    assert.same({}, m:poll(0))
    m:close()
  end)

  it("starts at most starts_per_poll transfers a poll (a frame's budget), all of them in the end", function()
    local m = core.multi { concurrency = 16, starts_per_poll = 3, timeout = 10 }
    for _ = 1, 8 do m:add { url = e.http_url .. SECTIONS, token = token } end
    e:configure { latency_ms = 300 } -- none finishes during the first polls
    m:poll(0)
    assert.equal(3, m:running())
    m:poll(0)
    assert.equal(6, m:running())
    assert.equal(0, m:timeout()) -- two more wait for the next poll, not for a socket
    local done, deadline = 0, socket.gettime() + 20
    while m:pending() > 0 and socket.gettime() < deadline do
      for _, entry in ipairs(m:poll(0.05)) do
        assert.equal(200, entry.status)
        done = done + 1
      end
    end
    assert.equal(8, done)
    m:close()
    assert.has_error(function() core.multi { starts_per_poll = 0 } end,
      "core.multi: 'starts_per_poll' must be a number >= 1")
  end)

  it("reports failures as err, grants as token and revocations as ok", function()
    local m = core.multi()
    local bad = m:add { url = e.http_url .. "/api/v2/nope", token = token }
    local grant = m:add(core.prepare_grant("client_credentials", { token_url = e.http_url .. "/connect/token",
      client_id = ID, client_secret = KEY }))
    local wrong = m:add(core.prepare_grant("client_credentials", { token_url = e.http_url .. "/connect/token",
      client_id = ID, client_secret = "WRONG" }))
    local by = {}
    for _, entry in ipairs(drain(m)) do by[entry.handle] = entry end
    assert.equal("api", by[bad].err.kind)
    assert.equal(4001, by[bad].err.number)
    assert.equal("Bearer", by[grant].token:token_type())
    assert.equal("invalid_client", by[wrong].err.code)
    local revoke = m:add(by[grant].token:prepare_revoke())
    local entries = drain(m)
    assert.equal(revoke, entries[1].handle)
    assert.is_true(entries[1].ok)
    m:close()
  end)

  it("never blocks on poll(0), and keeps a host loop running while requests wait (no busy wait)", function()
    e:configure { latency_ms = 300 }
    local m = core.multi { concurrency = 32 }
    for _ = 1, 32 do m:add { url = e.http_url .. SECTIONS, token = token } end
    local started, cpu0 = socket.gettime(), cpu_seconds()
    local last, worst, frames, completed = started, 0, 0, 0
    local last_wait = cpu_wait()
    local wait0 = last_wait
    while completed < 32 and socket.gettime() - started < 10 do
      local t0, w0 = socket.gettime(), cpu_wait()
      completed = completed + #m:poll(0)
      local took = socket.gettime() - t0 - (cpu_wait() - w0) -- less the time it waited for a CPU
      assert.is_true(not TIMED or took < 0.05, ("poll(0) took %.3f s"):format(took))
      frames = frames + 1
      -- the host's own work: a frame every 10 ms at most (the goal: one at least every 20 ms)
      local wait = m:timeout()
      socket.sleep(math.min(0.010, wait or 0.010))
      -- a frame's own time: less what it waited for a CPU other processes had
      -- (spec/run runs files side by side)
      local now, waited = socket.gettime(), cpu_wait()
      worst = math.max(worst, now - last - (waited - last_wait))
      last, last_wait = now, waited
    end
    local wall, cpu = socket.gettime() - started, cpu_seconds() - cpu0
    assert.equal(32, completed)
    assert.is_true(wall >= 0.3)
    -- a machine so busy that the loop waited for a CPU a twentieth of the time (a second test run
    -- beside this one) says nothing about its frames: not checked then, and it says so
    local busy = cpu_wait() - wait0 > wall / 20
    if TIMED then
      print(("worst frame %.1f ms, CPU %.3f s of %.3f s%s"):format(worst * 1000, cpu, wall,
        busy and " (a busy machine: frames not checked)" or ""))
      assert.is_true(busy or worst < 0.02 + 0.015, "a frame took " .. worst .. " s")
      assert.is_true(cpu < wall / 2, ("CPU %.3f s for %.3f s of wall time"):format(cpu, wall))
      assert.is_true(frames > 15)
    end
    m:close()
  end)

  it("tells an event loop what to wait for: sockets and a timeout", function()
    e:configure { latency_ms = 300 }
    local m = core.multi()
    m:add { url = e.http_url .. SECTIONS, token = token }
    assert.equal(0, m:timeout()) -- queued work: poll now
    m:poll(0)
    local deadline, sockets = socket.gettime() + 10, {} -- a bound for a busy machine; a socket comes at once
    while #sockets == 0 and socket.gettime() < deadline do
      m:poll(0.01)
      sockets = m:sockets()
    end
    assert.equal(1, #sockets)
    assert.is_number(sockets[1].fd)
    assert.is_true(sockets[1].read or sockets[1].write)
    local t = m:timeout()
    assert.is_true(t == nil or t >= 0)
    assert.equal(1, #drain(m))
    m:close()
  end)

  it("cancels a queued or running exchange (never reported, idle again), and closes with some running", function()
    e:configure { latency_ms = 300 }
    local m = core.multi { concurrency = 1 }
    local running = m:add { url = e.http_url .. SECTIONS, token = token }
    local queued = m:add { url = e.http_url .. SECTIONS, token = token }
    local kept = m:add { url = e.http_url .. SECTIONS, token = token }
    m:poll(0)
    assert.equal(1, m:running())
    assert.is_true(m:cancel(running))
    assert.is_true(m:cancel(queued))
    assert.is_false(m:cancel(queued))
    local entries = drain(m)
    assert.equal(1, #entries)
    assert.equal(kept, entries[1].handle)
    -- a cancelled exchange is idle: it can run again, anywhere
    local status = running:perform()
    assert.equal(200, status)
    assert.has_error(function() running:perform() end, "attempt to use a finished or closed exchange")
    -- an exchange in the multi cannot be finished by hand; closing it is deferred and drops it
    local inside = m:add { url = e.http_url .. SECTIONS, token = token }
    assert.has_error(function() inside:finish({ status = 200 }) end, "exchange:finish(): the exchange is running")
    inside:close()
    assert.same({}, drain(m))
    -- close() with transfers in flight aborts them; their exchanges are idle again
    local left = m:add { url = e.http_url .. SECTIONS, token = token }
    m:poll(0)
    m:close()
    assert.has_error(function() m:poll(0) end, "attempt to use a closed multi")
    assert.equal(200, (left:perform()))
  end)

  it("multiplexes a 64-wide HTTPS batch on HTTP/2: at most 2 connections (HTTP/1.1 needs one per transfer)", function()
    e:reset()
    local tls = assert(core.client_credentials { token_url = e.https_url .. "/connect/token", client_id = ID,
                                                 client_secret = KEY, cafile = e.ca_file })
    e:configure { latency_ms = 100 }
    local function batch(base, opts)
      local before = e:counters().connections
      local reqs = {}
      for i = 1, 64 do reqs[i] = { url = base .. SECTIONS, token = tls } end
      local out = core.request_many(reqs, opts)
      for i = 1, 64 do assert.equal(200, out[i].status, tostring(out[i].err)) end
      return e:counters().connections - before
    end
    assert.is_true(batch(e.https_url, { concurrency = 64, cafile = e.ca_file }) <= 2)
    local m = core.multi { concurrency = 64, cafile = e.ca_file }
    local before = e:counters().connections
    for _ = 1, 64 do m:add { url = e.https_url .. SECTIONS, token = tls } end
    local done = drain(m)
    assert.equal(64, #done)
    assert.is_true(e:counters().connections - before <= 2)
    m:close()
    -- plain HTTP has no multiplexing: the transfers run side by side on their own connections
    assert.is_true(batch(e.http_url, { concurrency = 64 }) > 2)
    tls:close()
  end)

  -- libcurl's curl_multi_perform runs every transfer, and 7.x checks each one's socket with a poll(2)
  -- of its own: a system call per transfer in flight at every wake-up. The engine drives libcurl with
  -- curl_multi_socket_action instead, on the sockets one poll(2) found ready (docs/performance.md, "Batches").
  it("wakes with one poll(2) for all its sockets, not one per transfer in flight", function()
    local strace = io.popen("command -v strace"):read("*l")
    if not strace or not TIMED then return pending("strace is not installed (or under a sanitizer)") end
    e:configure { latency_ms = 20 }
    local out = os.tmpname()
    local script = ([[
      package.path, package.cpath = %q, %q
      local core = require "avalara.core"
      local m = core.multi { concurrency = 32, timeout = 10 }
      for _ = 1, 64 do m:add { url = %q, token = %q } end
      local n = 0
      while m:pending() > 0 do n = n + #m:poll(1) end
      print("done " .. n)
    ]]):format(package.path, package.cpath, e.http_url .. SECTIONS, token:access_token())
    local cmd = ("strace -f -qq -c -e trace=poll,ppoll -o %s %s -e %s 2>&1"):format(out,
      os.getenv("SPEC_LUA") or "lua5.4", emu.shell_quote(script))
    local p = io.popen(cmd)
    local printed = p:read("*a")
    p:close()
    local f = assert(io.open(out))
    local summary = f:read("*a")
    f:close()
    os.remove(out)
    assert.matches("done 64", printed)
    -- strace -c: % time, seconds, usecs/call, calls, [errors], syscall
    local polls = 0
    for line in summary:gmatch("[^\n]+") do
      local calls, name = line:match("^%s*[%d.]+%s+[%d.]+%s+%d+%s+(%d+)%s+%d*%s*(%S+)$")
      if name == "poll" or name == "ppoll" then polls = polls + tonumber(calls) end
    end
    -- about two a request (the engine's wait, libcurl's check of a kept connection before reuse);
    -- curl_multi_perform made a thousand or more here
    assert.is_true(polls > 0 and polls < 4 * 64, "poll(2) calls for 64 requests: " .. polls .. "\n" .. summary)
  end)

  it("checks its arguments before any request", function()
    local before = e:counters().requests
    assert.has_error(function() core.multi { concurrency = 0 } end, "core.multi: 'concurrency' must be a number >= 1")
    assert.has_error(function() core.multi { transport = function() end } end)
    assert.has_error(function() core.multi(5) end, "bad argument #1 to 'core.multi' (table expected, got number)")
    local m = core.multi { timeout = 5 }
    assert.has_error(function() m:add { url = "http://api.example/x" } end)
    assert.has_error(function() m:add { url = e.http_url, transport = function() end } end)
    assert.has_error(function() m:poll(-1) end)
    assert.has_error(function() m:cancel("x") end)
    assert.equal(before, e:counters().requests)
    assert.truthy(tostring(m):find("^avalara%.multi %(0 running, 0 queued%)"))
    assert.equal("avalara.multi", getmetatable(m))
    m:close()
    assert.equal("avalara.multi (closed)", tostring(m))
  end)
end)
