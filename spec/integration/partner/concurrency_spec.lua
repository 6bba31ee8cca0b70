-- Single-use refresh tokens under concurrency: 8 coroutines, then 4 separate
-- OS processes, meet an expired access token at once and make exactly one
-- refresh request between them (the emulator's grant counter), all
-- succeeding; a process killed (SIGKILL) in the window between the refresh
-- answer and the store's commit leaves the record as it was (its refresh
-- token spent) and tokens only the server has: the next caller reports
-- `reauthorize`, and reconnecting revokes the orphans; one killed right after
-- the commit (before unlocking) leaves one the next caller uses at once:
-- never a silent failure, never a wait for a dead holder's lock.
local avalara = require "avalara"
local emu = require "spec.support.emulator"
local socket = require "socket"
local H = require "spec.support.partner"

describe("partner refresh under concurrency", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function() e:reset() end)

  local function sections_requests()
    return e:counters().routes.definitions_sections or 0
  end

  for _, flow in ipairs { "2012", "identity" } do
    it(flow .. ": 8 coroutines on an expired access token make one refresh request, and all succeed", function()
      local p = H.partner(e, flow, { transport = H.transport(true) })
      local conn
      H.run_coroutines { function() conn = H.connect(p, { company_id = H.COMPANY }) end }
      local secrets = { H.record(p, conn.id).refresh_token }
      e:request("POST", "/_emulator/tokens/expire")
      local fns = {}
      for i = 1, 8 do
        fns[i] = function()
          local records, err = assert(p:client(conn.id)):sections()
          return records and #records, err
        end
      end
      local results = H.run_coroutines(fns)
      for i = 1, 8 do assert.equal(21, results[i][1], tostring(results[i][2])) end
      assert.equal(1, H.refreshes(e, flow))
      assert.equal(16, sections_requests()) -- each was refused once (the token was dead), then went through
      secrets[#secrets + 1] = H.record(p, conn.id).refresh_token
      H.no_secret(secrets, H.dump(results))
    end)
  end

  -- A store that answers the next `n` reads of `key` with `snapshot`: what a
  -- caller sees when it read just before another holder's write.
  local function stale_reads(store, key, snapshot, n)
    local proxy = setmetatable({}, { __index = function(_, k)
      return function(_, ...) return store[k](store, ...) end
    end })
    proxy.get = function(_, k)
      if k == key and n > 0 then
        n = n - 1
        return snapshot
      end
      return store:get(k)
    end
    return proxy
  end

  it("a caller that read the old tokens before another holder stored new ones uses those: no second refresh", function()
    local p = H.partner(e, "2012")
    local conn = H.connect(p, { company_id = H.COMPANY })
    local key, old = p:key(conn.id), H.record(p, conn.id)
    e:request("POST", "/_emulator/tokens/expire")
    assert(assert(p:client(conn.id)):sections())          -- the other holder refreshes and stores
    assert.equal(1, H.refreshes(e, "2012"))
    -- this caller read the old record (making the client, first look): under the lock it reads again
    local late = H.partner(e, "2012", { store = stale_reads(p.store, key, old, 2) })
    local t = assert(assert(late:client(conn.id)):token(old.access_token))
    assert.equal(H.record(p, conn.id).access_token, t:access_token())
    assert.equal(1, H.refreshes(e, "2012"))
  end)

  it("refused as revoked, it reads the store once more: newer tokens stored meanwhile are used", function()
    local p = H.partner(e, "2012")
    local conn = H.connect(p, { company_id = H.COMPANY })
    local key, old = p:key(conn.id), H.record(p, conn.id)
    e:request("POST", "/_emulator/tokens/expire")
    assert(assert(p:client(conn.id)):sections())          -- a holder whose lock lapsed stored new tokens
    -- this one held the lock too, read the old record (client, first look, under the lock) and
    -- refreshed with the spent token
    local late = H.partner(e, "2012", { store = stale_reads(p.store, key, old, 3) })
    local t, err = assert(late:client(conn.id)):token(old.access_token)
    assert(t, tostring(err))
    assert.equal(H.record(p, conn.id).access_token, t:access_token())
    assert.equal(2, H.refreshes(e, "2012"))               -- its refresh was refused (token revoked)
    assert.equal("connected", assert(p:connections())[1].status)
  end)

  it("a store that cannot write the refreshed tokens: a loud error; the next call stores them, no second refresh", function()
    local store = avalara.store.memory()
    local full = true -- a full disk, for the first write of refreshed tokens
    local proxy = setmetatable({ cas = function(_, key, version, value, ...)
      if full and type(value) == "table" and value.refreshed_at then
        full = false
        return nil, "database or disk is full"
      end
      return store:cas(key, version, value, ...)
    end }, { __index = function(_, k) return function(_, ...) return store[k](store, ...) end end })
    local p = H.partner(e, "2012", { store = proxy })
    local conn = H.connect(p, { company_id = H.COMPANY })
    e:request("POST", "/_emulator/tokens/expire")
    local client = assert(p:client(conn.id))
    local _, err = client:sections()
    assert.equal("store_failed", err.code)
    assert.equal("store", err.kind)
    assert.matches("storing the refreshed tokens of connection " .. conn.id .. ": database or disk is full", err.message)
    assert(client:sections())
    assert.equal(1, H.refreshes(e, "2012"))
    assert.equal("connected", assert(p:connections())[1].status)
  end)

  it("a reconnect while a refresh is in flight wins: the refreshed tokens are revoked, not stored", function()
    local store = avalara.store.memory()
    local other = H.partner(e, "2012", { store = store })
    local conn, reconnected
    -- the refresh answer is in, its write not made yet: meanwhile the customer connects again
    local proxy = setmetatable({ cas = function(_, key, version, value, ...)
      if not reconnected and type(value) == "table" and value.refreshed_at then
        reconnected = H.connect(other, { connection_id = conn.id })
      end
      return store:cas(key, version, value, ...)
    end }, { __index = function(_, k) return function(_, ...) return store[k](store, ...) end end })
    local p = H.partner(e, "2012", { store = proxy })
    conn = H.connect(p, { company_id = H.COMPANY })
    local before = H.record(p, conn.id)
    e:request("POST", "/_emulator/tokens/expire")
    local records = assert(assert(p:client(conn.id)):sections())
    assert.equal(21, #records)
    assert.equal(conn.id, reconnected.id)
    local now = H.record(p, conn.id)
    assert.are_not.equal(before.refresh_token, now.refresh_token)
    assert.equal(1, H.refreshes(e, "2012"))
    -- what is stored is the reconnect's authorization, which works; the refreshed one was revoked
    assert.equal(200, assert(e:request("POST", "/oauth/access_token", { form = { grant_type = "refresh_token",
      client_id = H.PARTNER, client_secret = H.PARTNER_SECRET, refresh_token = now.refresh_token } })).status)
    assert.is_true(e:counters().routes.oauth_revoke >= 1)
  end)

  describe("separate processes sharing the file store", function()
    local dir, path, p, conn
    before_each(function()
      dir = H.tmpdir()
      path = dir .. "/connections.db"
      p = H.partner(e, "2012", { store = avalara.store.file(path) })
      conn = H.connect(p, { company_id = H.COMPANY })
      e:request("POST", "/_emulator/tokens/expire")
    end)
    after_each(function() H.rmdir(dir) end)

    local function secrets()
      local rec = H.record(p, conn.id)
      return { rec.access_token, rec.refresh_token, H.PARTNER_SECRET }
    end

    it("4 processes on an expired access token make one refresh request, and all succeed", function()
      -- 200 ms per response: every process reads the dead token before any refresh is stored
      e:configure { latency_ms = 200 }
      local go = dir .. "/go"
      local children = {}
      for i = 1, 4 do children[i] = H.spawn { "call", e.http_url, path, conn.id, go } end
      socket.sleep(0.5) -- all four started and waiting for the go file
      io.open(go, "w"):close()
      H.wait(children)
      local refreshed = 0
      for _, c in ipairs(children) do
        assert.matches("ok 21\n$", c.output)
        if c.output:find("^refreshed\nstored\n") then refreshed = refreshed + 1 end
        H.no_secret(secrets(), c.output)
      end
      assert.equal(1, refreshed)
      assert.equal(1, H.refreshes(e, "2012"))
      assert.equal(8, sections_requests()) -- four refused with the dead token, four through
    end)

    -- The window of a refresh: the server has spent the old refresh token and
    -- issued new ones, which exist only in this process until the store's
    -- commit. A SIGKILL there (the child's store wrapper kills it as the
    -- write begins) costs the grant; exactly this survives.
    it("killed in the window (refresh answer in, store commit not made): what survives, and nothing ran in it", function()
      local before = H.record(p, conn.id)
      local child = H.wait({ H.spawn { "kill-in-window", e.http_url, path, conn.id } })[1]
      -- no hook ran between the answer and the commit (on_request and on_refresh print their calls)
      assert.equal("window\n", child.output)
      assert.equal(1, H.refreshes(e, "2012"))
      local orphan = emu.read_file(path .. ".orphan")
      os.remove(path .. ".orphan")
      assert.is_true(#orphan >= 16 and orphan ~= before.refresh_token)
      -- the store: the record as it was before the refresh, its refresh token the spent one
      local after = H.record(p, conn.id)
      assert.same(before, after)
      -- the server: the tokens it issued in the window are live, and nobody has them but this spec
      local live = e:request("POST", "/oauth/access_token", { form = { grant_type = "refresh_token",
        client_id = H.PARTNER, client_secret = H.PARTNER_SECRET, refresh_token = orphan } })
      assert.equal(200, live.status)
      orphan = live.json.refresh_token -- the orphans' lifecycle goes on (2012: one per authorization)
      -- the next caller: told at once, by name, that the customer must reconnect
      local t0 = socket.gettime()
      local _, err = assert(p:client(conn.id)):sections()
      local took = socket.gettime() - t0
      assert.equal("reauthorize", err.code)
      assert.equal("oauth", err.kind)
      assert.matches("^connection " .. conn.id .. " is no longer authorized %(its refresh token was refused: token "
        .. "revoked%): the customer must reconnect %(partner:authorize_url, or hscode connect%)", err.message)
      -- far below the 60 s a lock is otherwise honoured (valgrind included)
      assert.is_true(took < 20, ("%.1f s: the dead holder's lock was waited for"):format(took))
      assert.equal(3, H.refreshes(e, "2012")) -- the spec's own, and the spent token tried once more
      assert.equal("reauthorize", assert(p:connections())[1].status)
      H.no_secret(secrets(), tostring(err), H.dump(err), child.output)
      -- reconnecting into the same id works, and (2012) revokes the old authorization's whole
      -- lifecycle: the tokens orphaned in the window die with it
      H.connect(p, { connection_id = conn.id })
      assert(assert(p:client(conn.id)):sections())
      local dead = e:request("POST", "/oauth/access_token", { form = { grant_type = "refresh_token",
        client_id = H.PARTNER, client_secret = H.PARTNER_SECRET, refresh_token = orphan } })
      assert.equal(400, dead.status)
    end)

    it("killed right after the store's commit (before any hook, before unlocking): the grant is kept", function()
      local before = H.record(p, conn.id)
      local child = H.wait({ H.spawn { "kill-after-commit", e.http_url, path, conn.id } })[1]
      assert.equal("committed\n", child.output) -- committed, then killed: no hook ran
      local after = H.record(p, conn.id)
      assert.are_not.equal(before.refresh_token, after.refresh_token)
      assert.equal("connected", after.status)
      local t0 = socket.gettime()
      local records = assert(assert(p:client(conn.id)):sections())
      assert.equal(21, #records)
      assert.is_true(socket.gettime() - t0 < 20)
      assert.equal(1, H.refreshes(e, "2012")) -- no second refresh
      assert.equal("connected", assert(p:connections())[1].status)
      -- the dead child still "holds" the lock: the next refresh takes it over at once
      e:request("POST", "/_emulator/tokens/expire")
      t0 = socket.gettime()
      assert(assert(p:client(conn.id)):sections())
      assert.is_true(socket.gettime() - t0 < 20)
      assert.equal(2, H.refreshes(e, "2012"))
    end)
  end)
end)
