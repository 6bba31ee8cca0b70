-- The stores' one contract (get with versions, set, cas, delete, lock with
-- ttl), for the memory store, the shared-dict store (on a stand-in dict) and
-- the file store (SQLite); the file store
-- across processes: no lost update under its lock or its cas, a lock held by
-- a live process is refused, one left by a killed process is taken over at
-- once; its file is private, and a file that is not a store is refused.
local avalara = require "avalara"
local socket = require "socket"
local emu = require "spec.support.emulator"
local H = require "spec.support.partner"
local contract = require "spec.support.store_contract"
local B = { describe = describe, it = it, before_each = before_each }

contract("memory", function() return avalara.store.memory() end, B)

-- avalara.store.shared_dict on a stand-in for ngx.shared: the dict calls it
-- makes (get, safe_set, safe_add, incr, delete; expiry on avalara.clock),
-- with `capacity` keys at most ("no memory" beyond). The real dict runs in
-- spec/integration/openresty.
local clock = require "avalara.clock"
local function stand_in_dict(capacity)
  local data, d = {}, {}
  local function live(k)
    local e = data[k]
    if e and e.exp and e.exp <= clock.now() then data[k], e = nil, nil end
    return e
  end
  local function count()
    local n = 0
    for k in pairs(data) do if live(k) then n = n + 1 end end
    return n
  end
  function d.get(_, k) local e = live(k); if e then return e.v, e.flags end end
  function d.safe_set(_, k, v, exp, flags)
    assert(exp >= 0, "bad \"exptime\" argument")
    if capacity and not live(k) and count() >= capacity then return false, "no memory" end
    data[k] = { v = v, flags = flags, exp = exp > 0 and clock.now() + exp or nil }
    return true
  end
  function d.safe_add(self, k, v, exp, flags)
    if live(k) then return false, "exists" end
    return d.safe_set(self, k, v, exp or 0, flags)
  end
  function d.incr(_, k, n, init)
    local e = live(k)
    if not e then e = { v = init }; data[k] = e end
    e.v = e.v + n
    return e.v
  end
  function d.delete(_, k) data[k] = nil end
  return d
end

local function stand_in_ngx(dicts)
  return { get_phase = function() return "content" end, shared = dicts, sleep = function() end,
    worker = { pid = function() return 4242 end } }
end

local SD = { describe = describe, it = it, before_each = function(f)
  before_each(function()
    _G.ngx = stand_in_ngx { tokens = stand_in_dict() }
    f()
  end)
  after_each(function() _G.ngx = nil end)
end }
contract("shared_dict", function() return avalara.store.shared_dict("tokens") end, SD)

describe("shared_dict store", function()
  after_each(function() _G.ngx = nil end)

  it("fails a write to a full dict with kind store, code full (no other key evicted)", function()
    _G.ngx = stand_in_ngx { small = stand_in_dict(3) } -- the version counter takes one key
    local s = avalara.store.shared_dict("small")
    assert(s:set("a", { n = 1 }))
    assert(s:set("b", { n = 2 }))
    local ok, err = s:set("c", { n = 3 })
    assert.is_nil(ok)
    assert.equal("store", err.kind)
    assert.equal("full", err.code)
    assert.is_true(err.retryable) -- a client carries on meanwhile
    assert.equal("avalara.store.shared_dict(small)", err.store)
    local cok, cerr = s:cas("c", nil, { n = 3 })
    assert.is_nil(cok)
    assert.equal("full", cerr.code)
    assert.same({ n = 1 }, (s:get("a")))
    assert.is_nil(s:lock("a"), "a full dict cannot take a lock") -- the cas mutex lapsed; no room for the lock
  end)

  it("gives an unreadable value as nil, nil, err (kind store) and refuses cas over it", function()
    _G.ngx = stand_in_ngx { tokens = stand_in_dict() }
    local s = avalara.store.shared_dict("tokens")
    _G.ngx.shared.tokens:safe_set("k", "{not json", 0, 1)
    local v, version, err = s:get("k")
    assert.is_nil(v)
    assert.is_nil(version)
    assert.equal("unreadable", err.code)
    assert.is_true(err.retryable)
    local ok, cerr = s:cas("k", nil, { n = 1 })
    assert.is_nil(ok)
    assert.equal("store", cerr.kind)
  end)

  it("raises naming the dict when nginx.conf has none of that name", function()
    _G.ngx = stand_in_ngx {}
    assert.has_error(function() avalara.store.shared_dict("nope") end,
      "avalara.store.shared_dict: no lua_shared_dict named 'nope' in nginx.conf")
    assert.is_function(require("avalara.openresty").store)
  end)
end)

local dir
contract("file", function()
  dir = dir or H.tmpdir()
  local path = dir .. "/" .. tostring(math.random(1e9)) .. ".db"
  return avalara.store.file(path)
end, B)

describe("file store", function()
  local tmp
  before_each(function() tmp = H.tmpdir() end)
  after_each(function() H.rmdir(tmp) end)
  teardown(function() if dir then H.rmdir(dir) end end)

  local function stat(path)
    return io.popen("stat -c %a " .. emu.shell_quote(path)):read("*l")
  end

  it("is readable by its owner only, in a folder made 0700; its tostring names it", function()
    local s = avalara.store.file(tmp .. "/new/dir/store.db")
    s:set("k", { secret = "x" })
    assert.equal("600", stat(tmp .. "/new/dir/store.db"))
    assert.equal("700", stat(tmp .. "/new/dir"))
    assert.equal("avalara.store.file(" .. tmp .. "/new/dir/store.db)", tostring(s))
  end)

  it("refuses a file that is not a store, and replaces a JSON token cache of earlier versions", function()
    local other = tmp .. "/notes.txt"
    local f = io.open(other, "w")
    f:write("my notes\n")
    f:close()
    local v, version, err = avalara.store.file(other):get("k")
    assert.is_nil(v)
    assert.is_nil(version)
    assert.equal("store", err.kind)
    assert.equal("corrupt", err.code)
    assert.is_true(err.retryable) -- a client warns and keeps its token for the process
    assert.equal(other, err.path)
    assert.equal("avalara.store.file(" .. other .. ")", err.store)
    assert.equal("avalara.store.file(" .. other .. "): " .. other
      .. " is not an SQLite database (not a store of this library?)", err.message)
    assert.equal("my notes\n", emu.read_file(other))
    local old = tmp .. "/tokens.json"
    f = io.open(old, "w")
    f:write('{"avalara:token:x":{"value":{"access_token":"t"},"expires":1}}')
    f:close()
    local s = avalara.store.file(old)
    assert.is_nil(s:get("avalara:token:x"))
    assert(s:set("k", { v = 1 }))
    assert.equal("SQLite format 3\0", emu.read_file(old):sub(1, 16))
  end)

  it("loses no update: 4 processes x 50 increments, under its lock, then with cas alone", function()
    for _, mode in ipairs { "increment", "cas-increment" } do
      local path = tmp .. "/" .. mode .. ".db"
      local children = {}
      for i = 1, 4 do children[i] = H.spawn { mode, path, "50" } end
      H.wait(children, 60)
      for _, c in ipairs(children) do assert.equal("done\n", c.output) end
      assert.equal(200, avalara.store.file(path):get("n").n)
    end
  end)

  it("refuses a lock a live process holds, and takes over at once one whose holder was killed", function()
    local path = tmp .. "/locks.db"
    local child = H.spawn { "hold-lock", path, "conn" }
    local deadline = socket.gettime() + 10
    while not emu.read_file(child.out):find("locked") and socket.gettime() < deadline do socket.sleep(0.02) end
    local s = avalara.store.file(path)
    assert.is_nil(s:lock("conn", 600))
    assert.is_function(s:lock("another"))
    os.execute("kill -KILL " .. child.pid)
    H.wait({ child })
    assert.is_function(s:lock("conn", 600)) -- not 600 s later
  end)
end)
