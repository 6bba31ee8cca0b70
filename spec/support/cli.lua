-- Shared by the CLI specs: runs bin/hscode as a subprocess, with the
-- repository's modules and build, a clean AVALARA_* environment and its own
-- token cache folder, and checks that no secret shows in what it printed.
local cjson = require "cjson"
local socket = require "socket"

local H = {}

H.KEY, H.SBX_KEY = "DEMO-LICENSE-KEY-0001", "DEMO-SANDBOX-KEY-0002"

local function repo_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = src:match("^(.*)/spec/support/cli%.lua$")
  if dir == nil or dir == "" then return "." end
  return dir
end
H.ROOT = repo_root()

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
H.slurp = slurp

H.write = require("spec.support.files").write

function H.tmpdir()
  local p = assert(io.popen("mktemp -d"))
  local dir = p:read("*l")
  p:close()
  return dir
end

function H.listing(dir)
  local p = assert(io.popen("ls -A " .. quote(dir)))
  local names = p:read("*a")
  p:close()
  return names
end

function H.rmdir(dir)
  os.execute("rm -rf " .. quote(dir))
end

-- The access tokens in a cache folder's token store (avalara.store.file: SQLite).
function H.cached_tokens(cache)
  local tokens = {}
  local path = cache .. "/avalara-hscode/tokens.db"
  if not io.open(path) then return tokens end
  local env = require("luasql.sqlite3").sqlite3()
  local conn = assert(env:connect(path, 10000))
  local cur = assert(conn:execute("SELECT value FROM kv"))
  for value in function() return cur:fetch() end do
    local entry = cjson.decode(value)
    if type(entry) == "table" and entry.access_token then tokens[#tokens + 1] = entry.access_token end
  end
  cur:close()
  conn:close()
  env:close()
  return tokens
end

local INHERITED = { "AVALARA_ACCOUNT_ID", "AVALARA_LICENSE_KEY", "AVALARA_COMPANY_ID", "AVALARA_ENVIRONMENT",
  "AVALARA_EMULATOR_URL", "AVALARA_CAFILE", "COLUMNS", "HSCODE_PROFILE" }

-- The shell words that run `hscode args...` with `env` and the token cache in
-- `cache` (the config file in `cache`/config/hscode: none unless a spec writes
-- it), with the build and interpreter of this run (a sanitizer build and
-- its preload under make test-asan).
local function command_line(args, env, cache)
  local vars = { "LUA_PATH=" .. quote(H.ROOT .. "/lua/?.lua;" .. H.ROOT .. "/lua/?/init.lua;;"),
    "LUA_CPATH=" .. quote(os.getenv("LUA_CPATH") or H.ROOT .. "/build/lua5.4/?.so;;"),
    "XDG_CACHE_HOME=" .. quote(cache), "XDG_CONFIG_HOME=" .. quote(cache .. "/config") }
  for k, v in pairs(env or {}) do vars[#vars + 1] = k .. "=" .. quote(v) end
  local words = {}
  for i, a in ipairs(args) do words[i] = quote(a) end
  return "env -u " .. table.concat(INHERITED, " -u ") .. " " .. table.concat(vars, " ") .. " "
    .. (os.getenv("SPEC_LUA") or "lua5.4") .. " " .. quote(H.ROOT .. "/bin/hscode") .. " " .. table.concat(words, " ")
end

-- Runs `hscode args...` with `env` (a table) and the token cache in `cache`;
-- returns {code, stdout, stderr}. Fails when a license key, or (without
-- --show-secret) an access token, appears in stdout or stderr. `opts.stdin`:
-- a file for its standard input (else /dev/null).
function H.run(args, env, cache, opts)
  local out, err = os.tmpname(), os.tmpname()
  local cmd = "cd " .. quote(H.ROOT) .. " && " .. command_line(args, env, cache)
    .. " >" .. quote(out) .. " 2>" .. quote(err) .. " <" .. quote(opts and opts.stdin or "/dev/null") .. "; echo $?"
  local p = assert(io.popen(cmd))
  local code = tonumber(p:read("*l"))
  p:close()
  local r = { code = code, stdout = slurp(out) or "", stderr = slurp(err) or "" }
  os.remove(out)
  os.remove(err)

  local secrets = { H.KEY, H.SBX_KEY, env and env.AVALARA_LICENSE_KEY }
  local show_secret = false
  for _, a in ipairs(args) do show_secret = show_secret or a == "--show-secret" end
  if not show_secret then
    for _, t in ipairs(H.cached_tokens(cache)) do secrets[#secrets + 1] = t end
  end
  for _, s in pairs(secrets) do
    assert(not r.stdout:find(s, 1, true) and not r.stderr:find(s, 1, true),
      "a secret in the output of hscode " .. table.concat(args, " "))
  end
  return r
end

-- An output CSV as records keyed by column name, and its header.
function H.read_csv(path)
  local records = assert(require("avalara.cli").csv_parse(assert(slurp(path))))
  local header, rows = {}, {}
  for c, name in ipairs(table.remove(records, 1)) do header[c] = name end
  for i, record in ipairs(records) do
    rows[i] = {}
    for c, name in ipairs(header) do rows[i][name] = record[c] end
  end
  return rows, header
end

-- Starts `hscode args...` in the background, in its own process group (job
-- control on: a non-interactive shell would make it ignore SIGINT), so a
-- spec can signal it as a terminal would. `opts.stdin` is a file to read.
-- Returns a job {pid, dir}; `H.finish(job)` waits for it.
function H.spawn(args, env, cache, opts)
  local dir = H.tmpdir()
  local job = { dir = dir, args = args }
  local script = "set -m; " .. command_line(args, env, cache) .. " >" .. quote(dir .. "/out") .. " 2>"
    .. quote(dir .. "/err") .. " <" .. quote(opts and opts.stdin or "/dev/null") .. " & echo $! >"
    .. quote(dir .. "/pid") .. "; wait $!; echo $? >" .. quote(dir .. "/rc")
  os.execute("cd " .. quote(H.ROOT) .. " && (sh -c " .. quote(script) .. " >/dev/null 2>&1 &)")
  for _ = 1, 200 do
    local pid = tonumber(slurp(dir .. "/pid") or "")
    if pid then job.pid = pid; return job end
    socket.sleep(0.01)
  end
  error("hscode did not start")
end

-- Sends a signal (a name: INT, TERM, KILL) to a job.
function H.signal(job, name)
  os.execute("kill -" .. name .. " " .. job.pid .. " 2>/dev/null")
end

-- Waits for a job to end (at most `timeout` seconds, default 60): {code, stdout, stderr}.
function H.finish(job, timeout)
  local deadline = socket.gettime() + (timeout or 60)
  local rc
  while true do
    rc = tonumber(slurp(job.dir .. "/rc") or "")
    if rc or socket.gettime() > deadline then break end
    socket.sleep(0.02)
  end
  if not rc then
    H.signal(job, "KILL")
    error("hscode " .. table.concat(job.args, " ") .. " did not end in time")
  end
  local r = { code = rc, stdout = slurp(job.dir .. "/out") or "", stderr = slurp(job.dir .. "/err") or "" }
  H.rmdir(job.dir)
  return r
end

-- Waits until `cond()` is true (at most `timeout` seconds, default 30).
function H.until_true(cond, timeout)
  local deadline = socket.gettime() + (timeout or 30)
  while not cond() do
    if socket.gettime() > deadline then error("condition not met in time") end
    socket.sleep(0.02)
  end
end

-- Counters of the emulator: client_credentials grants and requests of a route.
function H.grants(e)
  return (e:counters().grants.connect_token or {}).client_credentials or 0
end

function H.route(e, name)
  return e:counters().routes[name] or 0
end

-- The world of a CLI spec, for the enclosing describe block: one emulator for
-- the block, a scratch folder, and before each test a fresh cache folder and
-- the environment of `--env local` on that emulator (`extra` keys added).
-- Returns `w`, whose `e`, `dir`, `cache` and `env` are set as the hooks run.
function H.world(extra)
  local emu = require "spec.support.emulator"
  local busted = require "busted" -- its hooks: a helper module does not see the spec's globals
  local setup, teardown, before_each, after_each = busted.setup, busted.teardown, busted.before_each,
    busted.after_each
  local w = {}
  setup(function()
    w.e = emu.start()
    w.dir = H.tmpdir()
  end)
  teardown(function()
    if w.e then w.e:stop() end
    if w.dir then H.rmdir(w.dir) end
  end)
  before_each(function()
    w.e:reset()
    w.e:configure { classification_delay = 0 }
    w.cache = H.tmpdir()
    w.env = { AVALARA_ENVIRONMENT = "local", AVALARA_EMULATOR_URL = w.e.http_url }
    for k, v in pairs(extra or {}) do w.env[k] = v end
  end)
  after_each(function() H.rmdir(w.cache) end)
  return w
end

return H
