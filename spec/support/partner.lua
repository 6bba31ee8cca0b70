-- Shared by the partner specs: partners on the local emulator, a "browser"
-- that follows the authorize redirect, a yielding transport, child
-- processes, and the secrets no output may contain.
local avalara = require "avalara"
local emu = require "spec.support.emulator"
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local client_helper = require "spec.support.client"
local cli_helper = require "spec.support.cli"

local H = {}

H.PARTNER, H.PARTNER_SECRET = "demo-partner", "demo-partner-secret"
H.ACCOUNT, H.KEY, H.COMPANY = "2000000001", "DEMO-LICENSE-KEY-0001", 1001
H.CALLBACK = "http://127.0.0.1:49152/callback" -- the registered loopback URI, on a port of ours
H.FAST = { max_attempts = 3, base_delay = 0.01, max_delay = 0.05, deadline = 10 }
H.ROOT = emu.repo_root()
H.LUA = os.getenv("SPEC_LUA") or (rawget(_G, "jit") and "luajit" or "lua5.4")
-- The module build of this run (spec/run's LUA_CPATH: a sanitizer build under
-- make test-asan), relative to the repository; children run from there.
H.CPATH = os.getenv("LUA_CPATH") or ("build/" .. (rawget(_G, "jit") and "luajit" or "lua5.4") .. "/?.so;;")

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
  return (p.store:get(p:key(id)))
end

-- A client transport over LuaSocket (the client specs'). With `yield`, it
-- yields before each exchange, as a cosocket transport does, so that the
-- coroutines of a scheduler interleave; `rewrite(req)` may change a request
-- before it goes.
function H.transport(yield, rewrite)
  return client_helper.socket_transport(function(req)
    if rewrite then rewrite(req) end
    if yield then coroutine.yield() end
  end)
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

H.tmpdir, H.rmdir = cli_helper.tmpdir, cli_helper.rmdir

-- Starts `lua spec/support/partner_child.lua args...` (or another `script`) in the
-- background; returns {pid, out} (out: the file its stdout and stderr go to).
function H.spawn(args, script)
  local out = os.tmpname()
  local words = {}
  for i, a in ipairs(args) do words[i] = emu.shell_quote(a) end
  local cmd = ("cd %s && LUA_PATH=%s LUA_CPATH=%s %s %s %s >%s 2>&1 & echo $!"):format(
    emu.shell_quote(H.ROOT), emu.shell_quote("lua/?.lua;lua/?/init.lua;./?.lua;;"),
    emu.shell_quote(H.CPATH), H.LUA,
    script or "spec/support/partner_child.lua", table.concat(words, " "), emu.shell_quote(out))
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

-- ------------------------------------------------------------ hscode

local INHERITED = { "AVALARA_ACCOUNT_ID", "AVALARA_LICENSE_KEY", "AVALARA_COMPANY_ID", "AVALARA_ENVIRONMENT",
  "AVALARA_EMULATOR_URL", "AVALARA_CAFILE", "AVALARA_CLIENT_ID", "AVALARA_CLIENT_SECRET", "AVALARA_FLOW" }

-- The shell command running `hscode args` under this spec's Lua, with its
-- cache and data folders in `home` and the AVALARA_* variables of `env` only.
local function hscode_command(args, env, home)
  local vars = { "LUA_PATH=" .. emu.shell_quote(H.ROOT .. "/lua/?.lua;" .. H.ROOT .. "/lua/?/init.lua;;"),
    "LUA_CPATH=" .. emu.shell_quote(H.CPATH),
    "XDG_CACHE_HOME=" .. emu.shell_quote(home .. "/cache"), "XDG_DATA_HOME=" .. emu.shell_quote(home .. "/data") }
  for k, v in pairs(env or {}) do vars[#vars + 1] = k .. "=" .. emu.shell_quote(v) end
  local words = {}
  for i, a in ipairs(args) do words[i] = emu.shell_quote(a) end
  return "cd " .. emu.shell_quote(H.ROOT) .. " && env -u " .. table.concat(INHERITED, " -u ") .. " "
    .. table.concat(vars, " ") .. " " .. H.LUA .. " bin/hscode " .. table.concat(words, " ")
end

-- Runs `hscode args`; returns {code, stdout, stderr}.
function H.hscode(args, env, home)
  local out, err = os.tmpname(), os.tmpname()
  local p = assert(io.popen(hscode_command(args, env, home) .. " >" .. out .. " 2>" .. err .. " </dev/null; echo $?"))
  local code = tonumber(p:read("*l"))
  p:close()
  local r = { code = code, stdout = emu.read_file(out), stderr = emu.read_file(err) }
  os.remove(out)
  os.remove(err)
  return r
end

-- Starts `hscode args` in the background; returns {pid (hscode's own), out, err} (files).
function H.hscode_background(args, env, home)
  local out, err = os.tmpname(), os.tmpname()
  local inner = hscode_command(args, env, home):gsub(" && env %-u", " && echo $$ >" .. out .. ".pid && exec env -u", 1)
  local p = assert(io.popen("(sh -c " .. emu.shell_quote(inner) .. " >" .. out .. " 2>" .. err
    .. " </dev/null; echo $? >" .. out .. ".code) >/dev/null 2>&1 &"))
  p:close()
  local deadline = socket.gettime() + 10
  while not emu.read_file(out .. ".pid"):match("%d") and socket.gettime() < deadline do socket.sleep(0.01) end
  local pid = tonumber(emu.read_file(out .. ".pid"):match("%d+"))
  os.remove(out .. ".pid")
  return { pid = pid, out = out, err = err }
end

-- Waits for a background hscode; returns {code, stdout, stderr}.
function H.finish(bg, timeout)
  local deadline = socket.gettime() + (timeout or 30)
  while not io.open(bg.out .. ".code") and socket.gettime() < deadline do socket.sleep(0.02) end
  if not io.open(bg.out .. ".code") and bg.pid then os.execute("kill -KILL " .. bg.pid) end -- leave nothing behind
  socket.sleep(0.05)
  local r = { code = tonumber(emu.read_file(bg.out .. ".code")), stdout = emu.read_file(bg.out),
    stderr = emu.read_file(bg.err) }
  os.remove(bg.out)
  os.remove(bg.err)
  os.remove(bg.out .. ".code")
  return r
end

-- The first line a background hscode prints on stdout (waiting for it).
function H.first_line(bg, timeout)
  local deadline = socket.gettime() + (timeout or 10)
  while socket.gettime() < deadline do
    local line = emu.read_file(bg.out):match("^([^\n]*)\n")
    if line then return line end
    socket.sleep(0.02)
  end
  error("hscode printed nothing: " .. emu.read_file(bg.err))
end

-- Every token kept in an SQLite store file (access, refresh, PKCE verifier),
-- listed, and by kind (`secrets.refresh_token`).
function H.stored_secrets(path)
  local secrets = {}
  if not io.open(path) then return secrets end
  local env = require("luasql.sqlite3").sqlite3()
  local conn = assert(env:connect(path, 10000))
  local cur = assert(conn:execute("SELECT value FROM kv"))
  local row = cur:fetch({})
  while row do
    local v = require("cjson").decode(row[1])
    for _, k in ipairs { "access_token", "refresh_token", "verifier" } do
      if type(v) == "table" and v[k] then
        secrets[#secrets + 1] = v[k]
        secrets[k] = v[k] -- the last one of its kind, by name
      end
    end
    row = cur:fetch({})
  end
  cur:close()
  conn:close()
  env:close()
  return secrets
end

return H
