-- The stores' one contract (get with versions, set, cas, delete, lock with
-- ttl), for the memory store and the file store (SQLite); the file store
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
    assert.equal("avalara.store.file(" .. other .. "): " .. other
      .. " is not an SQLite database (not a store of this library?)", err)
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
