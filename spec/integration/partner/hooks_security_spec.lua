-- Hooks that raise (security issue 20, finding 4): a partner's `on_refresh`
-- or `on_request` raising at the refresh used to run after the single-use
-- refresh token was spent and before the new tokens were stored, and lost
-- the connection. Now the tokens are stored before any hook runs, hooks run
-- protected, and their errors go to `on_warning` (else stderr): the call
-- goes on. The same for a client's `on_token` and `on_request`.
local avalara = require "avalara"
local emu = require "spec.support.emulator"
local H = require "spec.support.partner"
local client_helper = require "spec.support.client"

describe("hooks that raise", function()
  local e, dir
  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function()
    e:reset()
    dir = H.tmpdir()
  end)
  after_each(function() H.rmdir(dir) end)

  -- A connection on a file store, its access token expired: the next call refreshes.
  local function connected(opts)
    local path = dir .. "/connections.db"
    opts = opts or {}
    opts.store = avalara.store.file(path)
    local p = H.partner(e, "2012", opts)
    local conn = H.connect(p, { company_id = H.COMPANY })
    e:request("POST", "/_emulator/tokens/expire")
    return p, conn, path
  end

  -- A partner on the same store without hooks: another process, later.
  local function later(path)
    return H.partner(e, "2012", { store = avalara.store.file(path) })
  end

  for _, stage in ipairs { "refreshed", "stored" } do
    it("on_refresh raising at stage " .. stage .. ": the refreshed tokens are kept, the call succeeds, "
      .. "on_warning is told", function()
      local warnings = {}
      local p, conn, path = connected { on_refresh = function(info)
        if info.stage == stage then error("log sink unavailable") end
      end, on_warning = function(message) warnings[#warnings + 1] = message end }
      local before = H.record(p, conn.id)
      local records, err = assert(p:client(conn.id)):sections()
      assert.equal(21, records and #records, tostring(err))
      assert.equal(1, H.refreshes(e, "2012"))
      local after = H.record(later(path), conn.id)
      assert.are_not.equal(before.refresh_token, after.refresh_token)
      assert.equal("connected", after.status)
      assert.equal(1, #warnings)
      assert.matches("^the on_refresh hook raised %(connection " .. conn.id .. ", stage " .. stage
        .. "; ignored%): .*log sink unavailable$", warnings[1])
      H.no_secret({ before.refresh_token, after.refresh_token, after.access_token, H.PARTNER_SECRET }, warnings[1])
      -- the next caller, anywhere, renews with the stored tokens: the grant was not lost
      e:request("POST", "/_emulator/tokens/expire")
      assert.equal(21, #assert(assert(later(path):client(conn.id)):sections()))
      assert.equal(2, H.refreshes(e, "2012"))
    end)
  end

  it("on_refresh interrupted (Ctrl-C, \"interrupted!\"): raised again, never taken for a hook's failure; "
    .. "the tokens are kept", function()
    local warnings = {}
    local p, conn, path = connected { on_refresh = function(info)
      if info.stage == "refreshed" then error("interrupted!", 0) end
    end, on_warning = function(message) warnings[#warnings + 1] = message end }
    local before = H.record(p, conn.id)
    local ok, err = pcall(function() return assert(p:client(conn.id)):sections() end)
    assert.is_false(ok)
    assert.matches("interrupted!$", tostring(err))
    assert.same({}, warnings)
    local after = H.record(later(path), conn.id)
    assert.are_not.equal(before.refresh_token, after.refresh_token) -- stored before any hook ran
    assert.equal(21, #assert(assert(later(path):client(conn.id)):sections()))
    assert.equal(1, H.refreshes(e, "2012"))
  end)

  it("a client's own on_request (an option of p:client) sees its refresh exchange", function()
    local seen = {}
    local p, conn = connected()
    local c = assert(p:client(conn.id, { on_request = function(info)
      seen[#seen + 1] = info.method .. " " .. tostring(info.status) .. (info.url == p.urls.token and " token" or "")
    end }))
    assert(c:sections())
    assert.equal("GET 401,POST 200 token,GET 200", table.concat(seen, ","))
  end)

  it("on_request raising on the refresh exchange: the tokens are kept, the call succeeds", function()
    local warnings = {}
    local p, conn, path = connected { on_request = function(info)
      if info.method == "POST" then error("metrics down") end
    end, on_warning = function(message) warnings[#warnings + 1] = message end }
    local records, err = assert(p:client(conn.id)):sections()
    assert.equal(21, records and #records, tostring(err))
    assert.matches("^the on_request hook raised %(ignored%): .*metrics down$", warnings[1])
    e:request("POST", "/_emulator/tokens/expire")
    assert.equal(21, #assert(assert(later(path):client(conn.id)):sections()))
    assert.equal(2, H.refreshes(e, "2012"))
    assert.equal("connected", assert(later(path):connections())[1].status)
  end)

  it("on_refresh raising at stage lost: the call returns reauthorize, not an error raised", function()
    local warnings = {}
    local p, conn = connected { on_refresh = function() error("log sink unavailable") end,
      on_warning = function(message) warnings[#warnings + 1] = message end }
    -- the refresh token dies on the server (its authorization revoked elsewhere)
    e:request("POST", "/oauth/revoke", { form = { client_id = H.PARTNER, client_secret = H.PARTNER_SECRET,
      token = H.record(p, conn.id).refresh_token } })
    local ok, records, err = pcall(function() return assert(p:client(conn.id)):sections() end)
    assert.is_true(ok, tostring(records))
    assert.is_nil(records)
    assert.equal("reauthorize", err.code)
    assert.matches("stage lost; ignored", warnings[1])
  end)

  it("an on_warning that raises too: the hook's error goes to stderr, the call succeeds", function()
    local p, conn, path = connected()
    local child = H.wait({ H.spawn { "call-hook-raises", e.http_url, path, conn.id } })[1]
    assert.matches("ok 21\n", child.output)
    assert.matches("avalara: warning: the on_refresh hook raised %(connection " .. conn.id
      .. ", stage refreshed; ignored%): [^\n]*log sink unavailable\n", child.output)
    assert.matches("stage stored; ignored", child.output)
    assert.equal("connected", H.record(p, conn.id).status)
    e:request("POST", "/_emulator/tokens/expire")
    assert.equal(21, #assert(assert(later(path):client(conn.id)):sections()))
  end)

  describe("a client's", function()
    it("on_token raising: the token is kept and the lock released, on_warning (raising too) falls back "
      .. "to stderr", function()
      local store = avalara.store.file(dir .. "/tokens.db")
      local warned = {}
      local c = client_helper.client(e, { store = store, on_token = function() error("token log down") end,
        on_warning = function(message)
          warned[#warned + 1] = message
          error("and this one too")
        end })
      local real = io.stderr
      local lines = {}
      -- stderr, for the fallback (restored before any assertion)
      rawset(io, "stderr", { write = function(_, ...) for _, s in ipairs { ... } do lines[#lines + 1] = s end end })
      local ok, tok = pcall(c.token, c)
      rawset(io, "stderr", real)
      assert.is_true(ok, tostring(tok))
      assert.truthy(tok)
      assert.matches("^the on_token hook raised %(ignored%): .*token log down$", warned[1])
      assert.matches("the on_token hook raised", table.concat(lines))
      -- stored and unlocked: another client on the store takes it at once, with no grant of its own
      local other = client_helper.client(e, { store = store })
      assert.equal(tok:access_token(), assert(other:token()):access_token())
      assert.equal(1, client_helper.grants(e))
    end)

    it("on_request raising: the call's answer is returned", function()
      local warned = {}
      local c = client_helper.client(e, { on_request = function() error("metrics down") end,
        on_warning = function(message) warned[#warned + 1] = message end })
      local records, err = c:sections()
      assert.equal(21, records and #records, tostring(err))
      assert.is_true(#warned >= 2) -- the token exchange and the call, each time
      assert.matches("^the on_request hook raised %(ignored%): .*metrics down$", warned[#warned])
    end)
  end)
end)
