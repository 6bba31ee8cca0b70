-- The client in a sandbox (issue 25, defect 8): only base, string, table,
-- coroutine and math, a host-provided require and the host's clock given to
-- avalara.clock.set; no os, io or LuaSocket. The in-memory path works
-- (new with explicit options, a classification, polling); what needs the
-- file system says so (spec/support/sandbox.lua makes the sandbox).
local socket = require "socket"
local emu = require "spec.support.emulator"
local S = require "spec.support.sandbox"

local ID, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"

describe("a sandboxed Lua state (no os, io, package or LuaSocket)", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function() e:reset() end)

  local function options(extra)
    local o = { environment = "local", emulator_url = e.http_url, account_id = ID, license_key = KEY,
      company_id = 1001, retries = { base_delay = 0.01, max_delay = 0.05 }, timeout = 5 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end

  it("classifies an item with the host's clock", function()
    local env, req = S.new()
    assert.is_nil(env.os)
    assert.is_nil(env.io)
    local reads, sleeps = 0, 0
    req("avalara.clock").set {
      now = function() reads = reads + 1; return socket.gettime() end,
      sleep = function(s) sleeps = sleeps + 1; socket.sleep(s) end }
    local avalara = req("avalara")
    local c = avalara.new(options())
    local m = assert(c:classify({ itemCode = "SB-1", description = "porcelain coffee mug" }, { country = "US" }))
    assert.equal("1001-SB-1-US", m.id)
    local done = assert(c:wait(m.id, { timeout = 10, interval = 0.05 }))
    assert.equal("CLASSIFIED", done.status)
    assert.is_true(reads > 0) -- the token's expiry and the wait's deadline read the host's clock
    assert.is_true(sleeps > 0) -- the wait slept through the host's sleep
    -- the non-blocking path too
    local h = c:start_classify({ itemCode = "SB-2", description = "bicycle" }, { country = "US" })
    for _ = 1, 500 do
      c:poll(0.01)
      if h.done then break end
    end
    assert.is_true(h.done)
    assert.is_nil(h.err)
  end)

  it("runs code given to the sandbox as a host would (a chunk with the sandbox's globals, no _G)", function()
    local env, req = S.new { no_G = true }
    req("avalara.clock").set { now = socket.gettime, sleep = socket.sleep }
    local status = S.run(env, [[
      local base, id, key = ...
      local c = require("avalara").new{ environment = "local", emulator_url = base, account_id = id,
        license_key = key, company_id = 1001, store = "memory" }
      assert(os == nil and io == nil and _G == nil)
      return assert(c:classify({ itemCode = "SB-3", description = "bicycle" }, { country = "US" })).status
    ]], e.http_url, ID, KEY)
    assert.equal("PENDING", status)
  end)

  it("says how to give a clock when the sandbox has none", function()
    local _, req = S.new()
    local clock = req("avalara.clock")
    local ok, err = pcall(clock.now)
    assert.is_false(ok)
    assert.matches("avalara.clock.set{ now = function", err, 1, true)
    ok, err = pcall(clock.sleep, 0.01)
    assert.is_false(ok)
    assert.matches("avalara.clock.set", err, 1, true)
  end)

  it("says the file store, the journal, catalogs and private files need the io library", function()
    local _, req = S.new()
    req("avalara.clock").set { now = socket.gettime, sleep = socket.sleep }
    local avalara = req("avalara")
    local ok, err = pcall(avalara.new, options { store = "file" })
    assert.is_false(ok)
    assert.matches("avalara.store.file: the file store needs the io and os libraries", err, 1, true)
    assert.matches("store = 'memory'", err, 1, true)
    local j, jerr = req("avalara.batch.journal").open("/nowhere/journal.db")
    assert.is_nil(j)
    assert.equal("store", jerr.kind)
    assert.matches("a journal needs the io and os libraries", jerr.message, 1, true)
    local list, rerr = req("avalara.items.reader").read("/nowhere/items.csv")
    assert.is_nil(list)
    assert.matches("reading a file needs the io library", rerr.message, 1, true)
    local f, perr = req("avalara.private").create("/nowhere/file")
    assert.is_nil(f)
    assert.matches("files need the io library", perr.message, 1, true)
  end)
end)
