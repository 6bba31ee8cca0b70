-- client:token(): caching, renewal, single-flight, stores, on_token, 401 and 403 renewal,
-- invalid_client at 400 or 401, Identity failures behind the API (36, 608).
local avalara = require "avalara"
local core = require "avalara.core"
local cjson = require "cjson"
local clock = require "avalara.clock"
local emu = require "spec.support.emulator"
local H = require "spec.support.client"

-- Runs the coroutines round-robin until all are dead (errors re-raised).
local function schedule(cos)
  local alive = true
  local rounds = 0
  while alive do
    alive = false
    rounds = rounds + 1
    for _, co in ipairs(cos) do
      if coroutine.status(co) ~= "dead" then
        local ok, err = coroutine.resume(co)
        if not ok then error(err, 0) end
        alive = alive or coroutine.status(co) ~= "dead"
      end
    end
    assert(rounds < 100000, "scheduler runaway")
  end
  return rounds
end

-- A Lua transport that yields while "in flight", then forwards the exchange
-- to the emulator with core.request (no transport).
local function yielding_transport(yields, log)
  return function(req)
    log[#log + 1] = req.url
    for _ = 1, yields do coroutine.yield() end
    local status, body, headers = core.request { method = req.method, url = req.url, headers = req.headers,
      body = req.body }
    if status == nil then
      local err = body
      if err.status then
        return { status = err.status, body = err.body, headers = { ["Content-Type"] = "application/json" } }
      end
      return nil, err
    end
    return { status = status, body = body ~= nil and cjson.encode(body) or nil, headers = headers }
  end
end

describe("client:token", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function() e:reset() end)
  after_each(function() clock.reset() end)

  it("caches the token: 10 calls, 1 token request", function()
    local c = H.client(e)
    local first = assert(c:token())
    for _ = 1, 9 do assert.equal(first:access_token(), assert(c:token()):access_token()) end
    for _ = 1, 10 do assert(c:sections()) end
    assert.equal(1, H.grants(e))
    assert.equal(10, H.route(e, "definitions_sections"))
    assert.equal("Bearer", first:token_type())
    assert.equal("hs-code-classification", first:scope())
    assert.is_true(first:expires_in() > 3500)
    assert.is_false(first:is_expired(300))
    assert.equal("Bearer " .. first:access_token(), first:authorization())
    local s = tostring(first)
    assert.truthy(s:find("hs-code-classification", 1, true))
    assert.falsy(s:find(first:access_token(), 1, true))
  end)

  it("renews within the leeway of a short TTL", function()
    e:configure { token_ttl = 2 }
    local c = H.client(e, { leeway = 1 })
    local t1 = assert(c:token())
    assert.equal(t1:access_token(), assert(c:token()):access_token())
    assert.equal(1, H.grants(e))
    clock.advance(1.2) -- inside the leeway now (1 s before expiry), as the client sees it
    e:configure { token_ttl = 3600 } -- the renewed token is not in the moved clock's leeway at once
    local t2 = assert(c:token())
    assert.are_not.equal(t1:access_token(), t2:access_token())
    assert.equal(2, H.grants(e))
    assert(c:sections())
    assert.equal(2, H.grants(e))
  end)

  it("does not renew on every call when the lifetime is shorter than the leeway", function()
    e:configure { token_ttl = 4 }
    local c = H.client(e) -- leeway 300 > 4 s: half the lifetime is used instead
    for _ = 1, 5 do assert(c:token()) end
    assert.equal(1, H.grants(e))
  end)

  it("single-flight: 50 coroutines on a cold cache make exactly one token request (yielding transport)", function()
    local log = {}
    local c = H.client(e, { transport = yielding_transport(5, log) })
    local got, cos = {}, {}
    for i = 1, 50 do
      cos[i] = coroutine.create(function()
        local t = assert(c:token())
        got[i] = t:access_token()
      end)
    end
    local rounds = schedule(cos)
    assert.is_true(rounds > 5) -- the request really was in flight across rounds
    assert.equal(1, H.grants(e))
    assert.equal(1, #log)
    for i = 2, 50 do assert.equal(got[1], got[i]) end
    assert.equal(50, #got)
    -- API calls through the yielding transport work too, concurrently.
    cos = {}
    for i = 1, 10 do
      cos[i] = coroutine.create(function() assert(c:sections()) end)
    end
    schedule(cos)
    assert.equal(10, H.route(e, "definitions_sections"))
    assert.equal(1, H.grants(e))
  end)

  it("single-flight: 50 coroutines renewing an expired token make one token request", function()
    e:configure { token_ttl = 2 }
    local log = {}
    local c = H.client(e, { leeway = 1, transport = yielding_transport(3, log) })
    local cos = { coroutine.create(function() assert(c:token()) end) }
    schedule(cos)
    clock.advance(1.2) -- inside the leeway: renewed by the next call
    e:configure { token_ttl = 3600 }
    cos = {}
    for i = 1, 50 do cos[i] = coroutine.create(function() assert(c:sections()) end) end
    schedule(cos)
    assert.equal(2, H.grants(e))
    assert.equal(50, H.route(e, "definitions_sections"))
  end)

  it("single-flight with plain libcurl from 50 coroutines", function()
    local c = H.client(e)
    local cos = {}
    for i = 1, 50 do cos[i] = coroutine.create(function() assert(c:token()) end) end
    schedule(cos)
    assert.equal(1, H.grants(e))
  end)

  it("calls on_token on obtain and renew, with no secret", function()
    local infos = {}
    local c = H.client(e, { on_token = function(info) infos[#infos + 1] = info end })
    local t = assert(c:token())
    assert(c:token())
    assert.equal(1, #infos)
    assert.is_false(infos[1].renewed)
    assert.equal("Bearer", infos[1].token_type)
    assert.equal("hs-code-classification", infos[1].scope)
    assert.is_number(infos[1].expires_at)
    for _, v in pairs(infos[1]) do
      assert.are_not.equal(t:access_token(), v)
      assert.are_not.equal(H.KEY, v)
    end
    assert(e:request("POST", "/_emulator/tokens/expire"))
    assert(c:sections())
    assert.equal(2, #infos)
    assert.is_true(infos[2].renewed)
  end)

  it("renews once on 401 BearerTokenInvalid and succeeds", function()
    local seen = {}
    local c = H.client(e, { on_request = function(i) seen[#seen + 1] = i end })
    local t1 = assert(c:token())
    assert(e:request("POST", "/_emulator/tokens/expire"))
    local sections = assert(c:sections())
    assert.equal(21, #sections)
    assert.equal(2, H.grants(e))
    assert.are_not.equal(t1:access_token(), assert(c:token()):access_token())
    assert.equal(2, H.route(e, "definitions_sections"))
    -- token, sections 401, token, sections 200
    assert.equal(401, seen[2].status)
    assert.equal("oauth", seen[2].error_kind)
    assert.equal(200, seen[4].status)
  end)

  it("renews only once: a second 401 is returned", function()
    local c = H.client(e)
    assert(c:token())
    assert(e:request("POST", "/_emulator/tokens/expire"))
    -- Expire again right after every token: a custom transport does it between exchanges.
    local c2 = H.client(e, { transport = function(req)
      local status, body, headers = core.request { method = req.method, url = req.url, headers = req.headers,
        body = req.body }
      if req.url:find("/connect/token", 1, true) then
        e:request("POST", "/_emulator/tokens/expire")
      end
      if status == nil then
        return { status = body.status, body = body.body, headers = { ["Content-Type"] = "application/json" } }
      end
      return { status = status, body = body and cjson.encode(body), headers = headers }
    end })
    local r, err = c2:sections()
    assert.is_nil(r)
    assert.equal("oauth", err.kind)
    assert.equal("BearerTokenInvalid", err.code)
    assert.is_true(err.needs_refresh)
    assert.equal(2, H.route(e, "definitions_sections"))
  end)

  it("the file store (mode 0600) is reused across two clients", function()
    local path = os.tmpname()
    os.remove(path)
    path = path .. ".d/tokens.json"
    local c1 = H.client(e, { store = avalara.store.file(path) })
    local t1 = assert(c1:token())
    local p = io.popen("stat -c %a " .. path)
    local mode = p:read("*l")
    p:close()
    assert.equal("600", mode)
    local f = assert(io.open(path))
    local content = f:read("*a")
    f:close()
    assert.falsy(content:find(H.KEY, 1, true))
    local c2 = H.client(e, { store = avalara.store.file(path) })
    assert.equal(t1:access_token(), assert(c2:token()):access_token())
    assert(c2:sections())
    assert.equal(1, H.grants(e))
    os.remove(path)
    os.remove(path:match("^(.*)/"))
  end)

  it("a shared memory store serves two clients", function()
    local store = avalara.store.memory()
    local c1, c2 = H.client(e, { store = store }), H.client(e, { store = store })
    assert.equal(assert(c1:token()):access_token(), assert(c2:token()):access_token())
    assert.equal(1, H.grants(e))
  end)

  it("memory store: ttl and lock", function()
    local s = avalara.store.memory()
    s:set("a", { x = 1 }, 100)
    assert.same({ x = 1 }, s:get("a"))
    s:set("b", { x = 2 }, -1)
    assert.is_nil(s:get("b"))
    local unlock = assert(s:lock("k"))
    assert.is_nil(s:lock("k"))
    unlock()
    assert.is_function(s:lock("k"))
    s:delete("a")
    assert.is_nil(s:get("a"))
  end)

  it("bad credentials: oauth invalid_client, not retried, no secret in the error", function()
    local c = H.client(e, { license_key = "WRONG-SECRET-123" })
    local t, err = c:token()
    assert.is_nil(t)
    assert.equal("oauth", err.kind)
    assert.equal("invalid_client", err.code)
    assert.equal(1, H.grants(e))
    assert.falsy(tostring(err):find("WRONG-SECRET-123", 1, true))
    assert.falsy((err.body or ""):find("WRONG-SECRET-123", 1, true))
    local _, err2 = c:sections()
    assert.equal("invalid_client", err2.code)
    assert.equal(2, H.grants(e))
  end)
  it("invalid_client at 400 (IdentityServer) or 401 (OpenID-certified): the same kind, code and message", function()
    local seen = {}
    for _, status in ipairs { 400, 401 } do
      e:configure({ invalid_client_status = status })
      for _, method in ipairs { "post", "basic" } do
        local c = H.client(e, { license_key = "WRONG-SECRET-123", auth_method = method })
        local t, err = c:token()
        assert.is_nil(t)
        assert.equal(status, err.status)
        assert.is_false(err.retryable)
        assert.is_false(err.needs_refresh)
        seen[#seen + 1] = { err.kind, err.code, err.message }
        assert.falsy(tostring(err):find("WRONG-SECRET-123", 1, true))
      end
    end
    assert.equal(4, H.grants(e))  -- never retried
    for i = 2, 4 do assert.same(seen[1], seen[i]) end
    assert.same({ "oauth", "invalid_client", "client authentication failed: unknown client, or wrong credentials" },
      seen[1])
  end)

  it("renews once on 403, then reports a permission error without looping", function()
    local c = H.client(e, { scope = "profile" })
    local r, err = c:sections()
    assert.is_nil(r)
    assert.equal("permission", err.kind)
    assert.equal(403, err.status)
    assert.equal("AuthorizationException", err.code)
    assert.equal(31, err.number)
    assert.is_false(err.retryable)
    assert.matches("^permission denied: the token's scope or the company does not allow this call: "
      .. "Authorization failed%.", err.message)
    assert.equal(2, H.grants(e))
    assert.equal(2, H.route(e, "definitions_sections"))
    -- a company the account does not have: the same, once
    local other = H.client(e, { company_id = 9999 })
    local _, cerr = other:classification("9999-X-US")
    assert.equal("permission", cerr.kind)
    assert.equal(4, H.grants(e))
  end)

  it("a 403 that a new token cures: renewed once, then the answer", function()
    local refused = 0
    local c = H.client(e, { transport = function(req)
      if req.url:find("/api/", 1, true) and refused == 0 then
        refused = 1
        return { status = 403, headers = { ["Content-Type"] = "application/json" },
          body = '{"error":{"code":"AuthorizationException","message":"Authorization failed.","details":[]}}' }
      end
      local status, body, headers = core.request { method = req.method, url = req.url, headers = req.headers,
        body = req.body }
      if status == nil then
        return { status = body.status, body = body.body, headers = { ["Content-Type"] = "application/json" } }
      end
      return { status = status, body = body and cjson.encode(body), headers = headers }
    end })
    assert.equal(21, #assert(c:sections()))
    assert.equal(2, H.grants(e))
  end)

  it("IdentityServerError (36) is retried whatever its status; AvalaraIdentityApiError (608) is not", function()
    local c = H.client(e)
    e:fault("definitions_sections", "IdentityServerError", 2, { status = 401 })
    assert.equal(21, #assert(c:sections()))
    assert.equal(3, H.route(e, "definitions_sections"))
    assert.equal(1, H.grants(e))  -- Identity failed, not the token: no renewal
    e:fault("definitions_sections", "AvalaraIdentityApiError", 1, { status = 500 })
    local r, err = c:sections()
    assert.is_nil(r)
    assert.equal("api", err.kind)
    assert.equal("AvalaraIdentityApiError", err.code)
    assert.equal(608, err.number)
    assert.is_false(err.retryable)
    assert.equal(4, H.route(e, "definitions_sections"))
    e:fault("definitions_sections", "IdentityServerError", 9)
    r, err = c:sections()
    assert.is_nil(r)
    assert.equal(36, err.number)
    assert.is_true(err.retryable)
  end)
end)
