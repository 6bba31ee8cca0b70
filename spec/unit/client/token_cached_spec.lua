-- avalara.token.cached (the cache behind a token source) and
-- avalara.token.token, with a fake source and the memory store: no server.
local cached = require "avalara.token.cached"
local token = require "avalara.token.token"
local stores = require "avalara.store"
local clock = require "avalara.clock"
local core = require "avalara.core"

local function source(records)
  local s = { calls = 0 }
  function s.fetch()
    s.calls = s.calls + 1
    local r = records[s.calls]
    if type(r) == "table" and core.is_error(r) then return nil, r end
    return r
  end
  return s
end

local function cache_of(src, opts)
  opts = opts or {}
  local warnings, told = {}, {}
  local c = cached.new(src, { store = opts.store or stores.memory(), key = "k", leeway = opts.leeway or 300,
    lease = 60, patience = 1, wait = function() clock.advance(0.1) end,
    warn = function(what, message) warnings[#warnings + 1] = what .. ": " .. message end,
    on_token = function(info) told[#told + 1] = info end, account_id = "A" })
  return c, warnings, told
end

local function rec(name, life)
  return { access_token = name, token_type = "Bearer", scope = "s", expires_at = clock.now() + (life or 3600),
    obtained_at = clock.now() }
end

describe("avalara.token.cached", function()
  after_each(function() clock.reset() end)

  it("fetches once, then serves the held token until it nears expiry", function()
    local src = source { rec("t1"), rec("t2") }
    local c, _, told = cache_of(src)
    local t = assert(c:token())
    assert.equal("t1", t:access_token())
    assert.equal("t1", assert(c:token()):access_token())
    assert.equal(1, src.calls)
    assert.equal(1, #told)
    assert.is_false(told[1].renewed)
    clock.advance(3600 - 299)
    assert.equal("t2", assert(c:token()):access_token())
    assert.equal(2, src.calls)
    assert.is_true(told[2].renewed)
  end)

  it("renews a stale token unless the store holds another", function()
    local src = source { rec("t1"), rec("t2") }
    local c = cache_of(src)
    assert(c:token())
    assert.equal("t2", assert(c:token("t1")):access_token())
    assert.equal("t2", assert(c:token("t1")):access_token())
    assert.equal(2, src.calls)
  end)

  it("peek never fetches; keep stores and holds", function()
    local src = source {}
    local c = cache_of(src)
    local tok, err, renewal = c:peek()
    assert.is_nil(tok)
    assert.is_nil(err)
    assert.is_false(renewal)
    local unlock = assert(c:lock())
    assert.is_nil((c:lock()))
    local kept = assert(c:keep(rec("k1"), false, unlock))
    assert.equal("k1", kept:access_token())
    assert.equal("k1", assert(c:peek()):access_token())
    assert.equal("k1", assert(c:stored()):access_token())
    assert.is_function(assert(c:lock()))
    assert.equal(0, src.calls)
  end)

  it("ignores a malformed stored record, said to warn (the client says each kind once), and fetches", function()
    local store = stores.memory()
    store:set("k", { access_token = "bad token\r\n" })
    local src = source { rec("good") }
    local c, warnings = cache_of(src, { store = store })
    assert.equal("good", assert(c:token()):access_token())
    assert.is_true(#warnings >= 1)
    for _, w in ipairs(warnings) do assert.truthy(w:find("^bad_token")) end
  end)

  it("returns the source's error as nil, err and releases the lock", function()
    local e = core.error { kind = "oauth", code = "invalid_client", message = "no", retryable = false }
    local c = cache_of(source { e })
    local tok, err = c:token()
    assert.is_nil(tok)
    assert.equal(e, err)
    assert.is_function(assert(c:lock()))
  end)

  it("fails with a misconfigured store's error instead of fetching", function()
    local serr = core.error { kind = "store", message = "NOAUTH", retryable = false }
    local store = { get = function() return nil, nil, serr end, set = function() return true end,
      lock = function() return nil, serr end }
    local src = source { rec("t") }
    local c = cache_of(src, { store = store })
    local tok, err = c:token()
    assert.is_nil(tok)
    assert.equal(serr, err)
    assert.equal(0, src.calls)
    assert.is_true(cached.misconfigured(serr))
    assert.is_false(cached.misconfigured(core.error { kind = "store", message = "down", retryable = true }))
  end)

  it("Token reads its record and never shows the secret in tostring", function()
    local t = token.wrap(rec("secret-token", 100))
    assert.equal("Bearer secret-token", t:authorization())
    assert.is_false(t:is_expired())
    assert.is_true(t:is_expired(200))
    assert.is_nil(tostring(t):find("secret", 1, true))
  end)
end)
