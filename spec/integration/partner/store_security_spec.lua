-- The file store against another local user (issue 20, findings 1 and 5,
-- the file store part of 12): no /tmp fallback; a planted or shared folder
-- or file (another user's, group or world writable, a symbolic link) is
-- refused and nothing is written into it; a damaged database or one of
-- another schema gives nil, err; a lock held by a live process in another
-- PID namespace is not taken over before its lease lapses; the partner's
-- lease outlives its request timeout. The attacker is `nobody` (setpriv):
-- these specs run as root.
local avalara = require "avalara"
local emu = require "spec.support.emulator"
local H = require "spec.support.partner"

local q = emu.shell_quote
local LUA = os.getenv("SPEC_LUA") or (jit and "luajit" or "lua5.4")
local ENV = "LUA_PATH=" .. q(os.getenv("LUA_PATH") or "lua/?.lua;lua/?/init.lua;;")
  .. " LUA_CPATH=" .. q(os.getenv("LUA_CPATH") or "build/lua5.4/?.so;;")

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

-- Runs a shell command as another user (nobody).
local function as_nobody(cmd)
  assert(sh("setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c " .. q(cmd)), cmd)
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local root = sh("test $(id -u) -eq 0")

describe("file store, against another local user", function()
  local tmp
  before_each(function()
    tmp = H.tmpdir()
    os.execute("chmod 755 " .. q(tmp)) -- the attacker may enter it
  end)
  after_each(function() H.rmdir(tmp) end)

  -- The store at `path` refuses to write with an error table (kind "store", code
  -- "unsafe", not retryable: a client fails its call with it); the message has
  -- `why`; nothing was written.
  local function refused(path, why)
    local s = avalara.store.file(path)
    local ok, err = s:set("avalara:token:x", { access_token = "SECRET-TOKEN-VALUE" })
    assert.is_nil(ok)
    assert.equal("store", err.kind)
    assert.equal("unsafe", err.code)
    assert.is_false(err.retryable)
    err = err.message
    assert.truthy(err:find(why, 1, true), err)
    local v, _, gerr = s:get("avalara:token:x")
    assert.is_nil(v)
    assert.truthy(gerr.message:find(why, 1, true), gerr.message)
    assert.is_nil(s:lock("k", 5))
    return err
  end

  it("has no /tmp fallback: without $XDG_CACHE_HOME and $HOME it raises naming what to set", function()
    local p = io.popen("cd " .. q(H.ROOT or ".") .. " && env -i PATH=/usr/bin:/bin " .. ENV .. " " .. LUA
      .. " -e " .. q([[local ok, err = pcall(require("avalara.store").file)
        io.write(tostring(ok), "\n", tostring(err))
        local ok2, err2 = pcall(require("avalara").new, { account_id = "1", license_key = "k", company_id = 1,
          environment = "local", emulator_url = "http://127.0.0.1:1", store = "file" })
        io.write("\n", tostring(ok2), "\n", tostring(err2))]]) .. " 2>&1")
    local out = p:read("*a")
    p:close()
    local ok, err, ok2, err2 = out:match("^(%a+)\n(.-)\n(%a+)\n(.*)$")
    assert.equal("false", ok, out)
    assert.truthy(err:find("neither $XDG_CACHE_HOME nor $HOME is set", 1, true), err)
    assert.truthy(err:find("store = avalara.store.file(", 1, true), err)
    assert.truthy(err:find("shared_dict", 1, true), err)
    assert.equal("false", ok2, out)
    assert.truthy(err2:find("$HOME", 1, true), err2)
    assert.falsy(err:find("/tmp", 1, true), err)
  end)

  it("refuses what another user planted: their folder (0777) and their world-writable file, unread", function()
    if not root then pending("needs root (setpriv to nobody)") return end
    local d = tmp .. "/avalara-hscode"
    assert(sh("chmod 1777 " .. q(tmp))) -- as /tmp is
    as_nobody("mkdir -m 777 " .. q(d) .. " && : > " .. q(d .. "/tokens.db") .. " && chmod 666 "
      .. q(d .. "/tokens.db"))
    local err = refused(d .. "/tokens.db", "belongs to user id 65534, not to this user")
    assert.truthy(err:find(d, 1, true), err)
    assert.equal("", read(d .. "/tokens.db")) -- no token in the attacker's file
  end)

  it("refuses the user's own folder when it is world-writable (root's 0777) or group-writable", function()
    local d = tmp .. "/open"
    assert(sh("mkdir -m 777 " .. q(d)))
    refused(d .. "/tokens.db", "is writable by its group or others (mode 0777): chmod 700 " .. d)
    assert.is_nil(read(d .. "/tokens.db"))
    assert(sh("chmod 770 " .. q(d)))
    refused(d .. "/tokens.db", "(mode 0770)")
  end)

  it("refuses a symbolic link as its folder or its file, and writes nothing through it", function()
    local real, victim = tmp .. "/real", tmp .. "/victim"
    assert(sh("mkdir -m 700 " .. q(real)))
    assert(sh("ln -s " .. q(real) .. " " .. q(tmp .. "/linked")))
    refused(tmp .. "/linked/tokens.db", tmp .. "/linked is a symbolic link")
    assert.is_nil(read(real .. "/tokens.db"))
    local f = io.open(victim, "w")
    f:write("precious")
    f:close()
    assert(sh("mkdir -m 700 " .. q(tmp .. "/own") .. " && ln -s " .. q(victim) .. " " .. q(tmp .. "/own/tokens.db")))
    refused(tmp .. "/own/tokens.db", tmp .. "/own/tokens.db is a symbolic link")
    assert.equal("precious", read(victim))
  end)

  it("refuses a group-writable or world-readable file of the user's own", function()
    local d = tmp .. "/own"
    assert(sh("mkdir -m 700 " .. q(d)))
    assert(avalara.store.file(d .. "/tokens.db"):set("k", { v = 1 }))
    assert(sh("chmod 620 " .. q(d .. "/tokens.db")))
    refused(d .. "/tokens.db", "is writable by its group or others (mode 0620): chmod 600 " .. d .. "/tokens.db")
    assert(sh("chmod 604 " .. q(d .. "/tokens.db")))
    refused(d .. "/tokens.db", "is readable by its group or others (mode 0604)")
    assert(sh("chmod 600 " .. q(d .. "/tokens.db")))
    assert.same({ v = 1 }, (avalara.store.file(d .. "/tokens.db"):get("k")))
  end)

  it("gives nil, err (never raises) on a truncated database and on one of another schema", function()
    local d = tmp .. "/own"
    assert(sh("mkdir -m 700 " .. q(d)))
    local good = avalara.store.file(d .. "/good.db")
    assert(good:set("k", { a = string.rep("x", 9000) }))
    good:close()
    assert(sh("head -c 5000 " .. q(d .. "/good.db") .. " > " .. q(d .. "/trunc.db") .. " && chmod 600 "
      .. q(d .. "/trunc.db")))
    assert(sh("sqlite3 " .. q(d .. "/newer.db") .. " 'CREATE TABLE kv (key TEXT PRIMARY KEY, blob BLOB); "
      .. "CREATE TABLE locks (key TEXT PRIMARY KEY, holder TEXT);' && chmod 600 " .. q(d .. "/newer.db")))
    for name, why in pairs { ["trunc.db"] = "trunc.db", ["newer.db"] = "is a database of another schema" } do
      local s = avalara.store.file(d .. "/" .. name)
      local calls = { { "get", "k" }, { "set", "k", { a = 2 } }, { "cas", "k", nil, { a = 3 } }, { "lock", "k", 5 },
        { "delete", "k" } }
      for _, c in ipairs(calls) do
        local ok, a, b, e = pcall(s[c[1]], s, c[2], c[3], c[4])
        assert.is_true(ok, name .. " " .. c[1] .. " raised: " .. tostring(a))
        assert.is_nil(a, name .. " " .. c[1])
        local err = c[1] == "get" and e or b -- get: nil, nil, err
        assert.is_table(err, name .. " " .. c[1])
        assert.equal("store", err.kind)
        assert.equal("corrupt", err.code, err.message)
        assert.truthy(err.message:find(why, 1, true), err.message)
      end
    end
  end)
end)

describe("file store lock, holder in another PID namespace", function()
  local tmp
  before_each(function() tmp = H.tmpdir() end)
  after_each(function() H.rmdir(tmp) end)

  it("is not taken while its holder lives, and is taken once its lease lapses", function()
    if not (root and sh("unshare --pid --fork --mount-proc true 2>/dev/null")) then
      pending("needs root and unshare --pid (a container sharing the store's volume)")
      return
    end
    local db, stop = tmp .. "/c.db", tmp .. "/stop"
    -- the holder, in a PID namespace of its own: takes the lock for 3 s, says so, holds on until told to stop
    local holder = io.popen("cd " .. q(H.ROOT or ".") .. " && " .. ENV .. " unshare --pid --fork --mount-proc "
      .. LUA .. " -e " .. q(([[local s = require("avalara.store").file(%q)
        local unlock = s:lock("k", 3)
        io.write(unlock and "locked\n" or "refused\n"); io.flush()
        local t = os.time()
        while os.time() - t < 30 and not io.open(%q) do os.execute("sleep 0.1") end
        io.write("alive\n")]]):format(db, stop)))
    assert.equal("locked", holder:read("*l"))
    local s = avalara.store.file(db)
    local started = os.time()
    assert.is_nil(s:lock("k", 60), "taken from a live holder in another PID namespace")
    local unlock
    while not unlock and os.time() - started < 10 do
      os.execute("sleep 0.2")
      unlock = s:lock("k", 60)
    end
    assert.is_function(unlock)
    assert.is_true(os.time() - started >= 2, "taken before the lease lapsed")
    io.open(stop, "w"):close()
    assert.equal("alive", holder:read("*l")) -- it was alive all along
    holder:close()
    unlock()
  end)
end)

describe("partner refresh lock lease", function()
  local function partner(opts)
    opts.client_id, opts.client_secret = "demo-partner", "demo-partner-secret"
    opts.environment, opts.emulator_url = "local", "http://127.0.0.1:1"
    return avalara.partner.new(opts)
  end

  it("outlives the request timeout: a shorter lock_ttl is refused, the default is extended", function()
    assert.has_error(function() partner { lock_ttl = 20, timeout = 30 } end)
    local ok, err = pcall(partner, { lock_ttl = 20, timeout = 30 })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("'lock_ttl' (20 s) must be longer than 'timeout' (30 s)", 1, true), err)
    assert.equal(60, partner({}).lock_ttl)
    assert.equal(150, partner({ timeout = 120 }).lock_ttl)
    assert.equal(45, partner({ lock_ttl = 45, timeout = 40 }).lock_ttl)
  end)
end)
