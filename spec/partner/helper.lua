-- Shared by the partner specs: partners on the local emulator, a "browser"
-- that follows the authorize redirect, a yielding transport, child
-- processes, and the secrets no output may contain.
local avalara = require "avalara"
local emu = require "spec.support.emulator"
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"

local H = {}

H.PARTNER, H.PARTNER_SECRET = "demo-partner", "demo-partner-secret"
H.ACCOUNT, H.KEY, H.COMPANY = "2000000001", "DEMO-LICENSE-KEY-0001", 1001
H.CALLBACK = "http://127.0.0.1:49152/callback" -- the registered loopback URI, on a port of ours
H.FAST = { max_attempts = 3, base_delay = 0.01, max_delay = 0.05, deadline = 10 }
H.ROOT = emu.repo_root()
H.LUA = os.getenv("SPEC_LUA") or (rawget(_G, "jit") and "luajit" or "lua5.4")

-- A partner of `flow` ("2012" or "identity") on emulator `e`.
function H.partner(e, flow, opts)
  local o = { client_id = H.PARTNER, client_secret = H.PARTNER_SECRET, redirect_uri = H.CALLBACK,
    environment = "local", emulator_url = e.http_url, flow = flow or "2012", timeout = 5, retries = H.FAST }
  if flow == "identity" then o.client_id, o.client_secret = H.ACCOUNT, H.KEY end
  for k, v in pairs(opts or {}) do o[k] = v end
  return avalara.partner.new(o)
end

-- GET without following redirects: status, headers.
function H.get(url)
  local ok, status, headers = http.request { url = url, redirect = false, sink = ltn12.sink.null() }
  assert(ok, status)
  return status, headers
end

-- What the customer's browser does with the authorize URL: the emulator
-- approves (or refuses) and redirects; returns the callback URL.
function H.browse(url)
  local status, headers = H.get(url)
  assert(status == 302, "authorize answered " .. tostring(status))
  return headers.location
end

-- authorize_url, browser, handle_callback: a new connection (and its callback URL).
function H.connect(p, opts)
  local url = assert(p:authorize_url(opts))
  local callback = H.browse(url)
  local conn, err = p:handle_callback(callback)
  assert(conn, tostring(err))
  return conn, callback
end

-- The stored record of a connection (with its tokens: for the specs' own checks only).
function H.record(p, id)
  return (p.store:get(p:_key(id)))
end

-- A client transport over LuaSocket. With `yield`, it yields before each
-- exchange, as a cosocket transport does, so that the coroutines of a
-- scheduler interleave; `rewrite(req)` may change a request before it goes.
function H.transport(yield, rewrite)
  return function(req)
    if rewrite then rewrite(req) end
    if yield then coroutine.yield() end
    local chunks, headers = {}, {}
    for k, v in pairs(req.headers or {}) do headers[k:lower()] = v end
    if req.body then headers["content-length"] = tostring(#req.body) end
    local ok, status, rheaders = http.request { url = req.url, method = req.method, headers = headers,
      source = req.body and ltn12.source.string(req.body) or nil, sink = ltn12.sink.table(chunks), redirect = false }
    if not ok then return nil, { kind = "transport", message = tostring(status) } end
    return { status = status, headers = rheaders, body = table.concat(chunks) }
  end
end

-- Runs the functions as coroutines, round robin, until all have returned;
-- returns their results (a table of return-value tables).
function H.run_coroutines(fns)
  local cos, results, live = {}, {}, #fns
  for i, f in ipairs(fns) do cos[i] = coroutine.create(f) end
  while live > 0 do
    for i, co in ipairs(cos) do
      if coroutine.status(co) == "suspended" then
        local out = { coroutine.resume(co) }
        assert(out[1], out[2])
        if coroutine.status(co) == "dead" then
          results[i] = { select(2, (table.unpack or unpack)(out)) }
          live = live - 1
        end
      end
    end
  end
  return results
end

-- Refresh requests the emulator received for `flow`.
function H.refreshes(e, flow)
  local g = e:counters().grants
  local route = flow == "identity" and "connect_token" or "oauth_access_token"
  return (g[route] or {}).refresh_token or 0
end

function H.tmpdir()
  local p = assert(io.popen("mktemp -d /tmp/avalara-partner.XXXXXX"))
  local dir = p:read("*l")
  p:close()
  return dir
end

function H.rmdir(dir)
  os.execute("rm -rf " .. emu.shell_quote(dir))
end

-- Starts `lua spec/partner/child.lua args...` in the background; returns
-- {pid, out} (out: the file its stdout and stderr go to).
function H.spawn(args)
  local out = os.tmpname()
  local words = {}
  for i, a in ipairs(args) do words[i] = emu.shell_quote(a) end
  local cmd = ("cd %s && LUA_PATH=%s LUA_CPATH=%s %s spec/partner/child.lua %s >%s 2>&1 & echo $!"):format(
    emu.shell_quote(H.ROOT), emu.shell_quote("lua/?.lua;lua/?/init.lua;./?.lua;;"),
    emu.shell_quote("build/" .. (rawget(_G, "jit") and "luajit" or "lua5.4") .. "/?.so;;"), H.LUA,
    table.concat(words, " "), emu.shell_quote(out))
  local p = assert(io.popen(cmd))
  local pid = tonumber(p:read("*l"))
  p:close()
  return { pid = pid, out = out }
end

-- Waits for the children to end (at most `timeout` s); returns their outputs.
function H.wait(children, timeout)
  local deadline = socket.gettime() + (timeout or 30)
  for _, c in ipairs(children) do
    while emu.alive(c.pid) and socket.gettime() < deadline do socket.sleep(0.02) end
    assert(not emu.alive(c.pid), "child " .. c.pid .. " still runs")
    c.output = emu.read_file(c.out)
    os.remove(c.out)
  end
  return children
end

-- Asserts that none of the secrets appears in any of the texts.
function H.no_secret(secrets, ...)
  for i = 1, select("#", ...) do
    local text = tostring((select(i, ...)))
    for _, s in pairs(secrets) do
      if type(s) == "string" and #s >= 8 then
        assert(not text:find(s, 1, true), "a secret (" .. s:sub(1, 4) .. "...) in: " .. text:sub(1, 200))
      end
    end
  end
end

-- Every string of a table, nested, as one text (for no_secret on records and errors).
function H.dump(v, out)
  out = out or {}
  if type(v) == "table" then
    for k, x in pairs(v) do
      out[#out + 1] = tostring(k)
      H.dump(x, out)
    end
  else
    out[#out + 1] = tostring(v)
  end
  return table.concat(out, " ")
end

return H
