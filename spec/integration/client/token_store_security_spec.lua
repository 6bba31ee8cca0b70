-- Issue 20, finding 12 (the planted token, repro planted_token.sh): a token
-- record in the store with a CR/LF in its access token made every call an
-- internal error (core.request raised) until it expired; a field of the
-- wrong type (expires_at = "soon") raised too. A store holds what any
-- process with access wrote there: a record that is not a valid token is
-- now treated as no token, said once through on_warning, and a fresh
-- token is fetched from the (real) emulator and stored over it.
local avalara = require "avalara"
local emu = require "spec.support.emulator"
local H = require "spec.support.client"

local FUTURE = os.time() + 3600

local BAD = {
  ["CRLF in the token (planted_token.sh)"] = { access_token = "abc\r\nX-Injected: 1", token_type = "Bearer",
    expires_at = FUTURE },
  ["LF in the token"] = { access_token = "abc\nX-Injected: 1", expires_at = FUTURE },
  ["NUL in the token"] = { access_token = "abc\0def", expires_at = FUTURE },
  ["a space in the token"] = { access_token = "abc X-Injected", expires_at = FUTURE },
  ["an empty token"] = { access_token = "", expires_at = FUTURE },
  ["a number as the token"] = { access_token = 42, expires_at = FUTURE },
  ["a string as expires_at"] = { access_token = "abc", expires_at = "soon" },
  ["NaN as expires_at"] = { access_token = "abc", expires_at = 0 / 0 },
  ["a table as obtained_at"] = { access_token = "abc", expires_at = FUTURE, obtained_at = {} },
  ["a table as token_type"] = { access_token = "abc", expires_at = FUTURE, token_type = {} },
  ["a string instead of a record"] = "abc",
}

describe("a token store holding what is not a valid token (issue 20, finding 12)", function()
  local e, dir
  setup(function()
    e = emu.start()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. emu.shell_quote(dir)))
  end)
  teardown(function()
    if e then e:stop() end
    if dir then os.execute("rm -rf " .. emu.shell_quote(dir)) end
  end)

  local function client(store, warnings)
    return H.client(e, { store = store, retries = false, on_warning = function(m) warnings[#warnings + 1] = m end })
  end

  for label, rec in pairs(BAD) do
    it(label .. ": the call succeeds with a fresh token, one warning, the record replaced", function()
      local store, warnings = avalara.store.memory(), {}
      local c = client(store, warnings)
      assert(store:set(c.store_key, rec, 3600))
      local grants = H.grants(e)
      local ok, model, err = pcall(c.classify, c, { itemCode = "SEC-12", description = "cotton t-shirt",
        countryOfDestination = "US" })
      assert.is_true(ok, tostring(model))
      assert.is_table(model, tostring(err))
      assert.equal(grants + 1, H.grants(e))
      assert.equal(1, #warnings)
      assert.truthy(warnings[1]:find("not a valid token", 1, true))
      local now_rec = store:get(c.store_key)
      assert.equal("string", type(now_rec.access_token))
      assert.truthy(now_rec.access_token:find("^[\33-\126]+$"))
      -- the next call uses the stored token: no new grant, no new warning
      assert.is_table((c:sections()))
      assert.equal(grants + 1, H.grants(e))
      assert.equal(1, #warnings)
    end)
  end

  it("a file store, as the CLI keeps tokens (planted_token.sh): every later run works again", function()
    local path = dir .. "/tokens.db"
    local warnings = {}
    local c = client(avalara.store.file(path), warnings)
    assert.is_table((c:sections()))
    -- another process plants a token with a line break in it
    local planted = avalara.store.file(path)
    local rec = planted:get(c.store_key)
    rec.access_token = "abc\r\nX-Injected: 1"
    assert(planted:set(c.store_key, rec, 3600))
    for run = 1, 2 do
      local fresh = client(avalara.store.file(path), warnings)
      local ok, sections, err = pcall(fresh.sections, fresh)
      assert.is_true(ok, tostring(sections))
      assert.is_table(sections, "run " .. run .. ": " .. tostring(err))
    end
    assert.equal(1, #warnings) -- the second run finds the fresh token
  end)

  it("a token source that hands out a token with a line break: nil, err, nothing raised or sent", function()
    local sent = 0
    local c = avalara.new { environment = "local", emulator_url = e.http_url, company_id = H.COMPANY, retries = false,
      token_source = { token = function() return { access_token = "tok\r\nX-Injected: 1", token_type = "Bearer" } end },
      transport = function(req)
        sent = sent + 1
        return H.socket_transport()(req)
      end }
    local ok, model, err = pcall(c.classify, c, { itemCode = "A", description = "d", countryOfDestination = "US" })
    assert.is_true(ok, tostring(model))
    assert.is_nil(model)
    assert.equal("transport", err.kind)
    assert.truthy(err.message:find("^request not sent: the credential"))
    assert.equal(0, sent)
  end)
end)

describe("a file store in a place others can write (issue 20, finding 1)", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)

  it("fails the call with the store's error (kind store, code unsafe): no token fetched or kept aside", function()
    local p = assert(io.popen("mktemp -d"))
    local dir = p:read("*l")
    p:close()
    os.execute("chmod 777 " .. dir)
    local warnings = {}
    local c = H.client(e, { store = avalara.store.file(dir .. "/tokens.db"),
      on_warning = function(m) warnings[#warnings + 1] = m end })
    local rec, err = c:sections()
    assert.is_nil(rec)
    assert.equal("store", err.kind)
    assert.equal("unsafe", err.code)
    assert.is_false(err.retryable)
    assert.truthy(err.message:find("chmod 700 " .. dir, 1, true), err.message)
    assert.equal(0, H.grants(e))
    assert.same({}, warnings)
    assert.is_nil(io.open(dir .. "/tokens.db"))
    os.execute("rm -rf " .. dir)
  end)
end)
