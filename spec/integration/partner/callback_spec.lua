-- partner:handle_callback refuses what it must, each failure with its own
-- err.code and no secret: a missing, unknown (CSRF), replayed or expired
-- state, the customer's refusal (error=access_denied), and every error of
-- seed 003's table the exchanges can meet (real answers of the emulator; a
-- rewriting transport sends what this library never sends by itself).
local cjson = require "cjson"
local emu = require "spec.support.emulator"
local clock = require "avalara.clock"
local H = require "spec.support.partner"

describe("partner callbacks", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function() e:reset() end)
  after_each(function() clock.reset() end)

  local function code_grants(flow)
    local g = e:counters().grants[flow == "identity" and "connect_token" or "oauth_access_token"] or {}
    return g.authorization_code or 0
  end

  -- Asserts a refusal: nil, an error of kind `kind` and code `code`, no secret in it.
  local function refused(code, conn, err, kind)
    assert.is_nil(conn)
    assert.equal(code, err.code, tostring(err))
    assert.equal(kind or "oauth", err.kind)
    assert.is_false(err.retryable)
    H.no_secret({ H.PARTNER_SECRET, H.KEY }, tostring(err), H.dump(err))
    return err
  end

  describe("state", function()
    it("a callback without a state: state_missing, and the code is not exchanged", function()
      local p = H.partner(e, "2012")
      local callback = H.browse(assert(p:authorize_url()))
      refused("state_missing", p:handle_callback((callback:gsub("&state=[^&]*", ""))))
      assert.equal(0, code_grants("2012"))
    end)

    it("CSRF: a state this partner never issued is refused (state_unknown), even with a valid code", function()
      local p, attacker = H.partner(e, "2012"), H.partner(e, "2012")
      assert(p:authorize_url())                                  -- the victim's pending authorization
      local forged = H.browse(assert(attacker:authorize_url()))  -- another store's state, a real code
      local err = refused("state_unknown", p:handle_callback(forged))
      assert.matches("matches no authorization started here", err.message)
      -- a made-up state on a real code: the same
      local callback = H.browse(assert(p:authorize_url()))
      refused("state_unknown", p:handle_callback((callback:gsub("state=[^&]*", "state=" .. ("A"):rep(43)))))
      refused("state_unknown", p:handle_callback((callback:gsub("state=[^&]*", "state=" .. ("A"):rep(100000)))))
      refused("state_unknown", p:handle_callback((callback:gsub("state=[^&]*", "state=%%00%%0a"))))
      assert.equal(0, code_grants("2012"))
      assert.same({}, assert(p:connections()))
    end)

    it("a replayed callback is refused (state_replayed); the code is exchanged once", function()
      for _, flow in ipairs { "2012", "identity" } do
        local p = H.partner(e, flow)
        local conn, callback = H.connect(p)
        assert.truthy(conn.id)
        refused("state_replayed", p:handle_callback(callback))
        assert.equal(1, code_grants(flow))
        assert.equal(1, #assert(p:connections()))
      end
    end)

    it("a callback after the state's lifetime is refused (state_expired)", function()
      local p = H.partner(e, "2012", { state_ttl = 1 })
      local callback = H.browse(assert(p:authorize_url()))
      clock.advance(2.1) -- past the state's 1 s lifetime, as the partner sees it
      local err = refused("state_expired", p:handle_callback(callback))
      assert.matches("took longer than its 1 s", err.message)
      refused("state_replayed", p:handle_callback(callback)) -- and it is spent
      assert.equal(0, code_grants("2012"))
    end)

    it("takes the parameters as a table too (ngx.req.get_uri_args); a repeated one is refused", function()
      local p = H.partner(e, "2012")
      local callback = H.browse(assert(p:authorize_url()))
      local args = {}
      for k, v in callback:match("%?(.*)$"):gmatch("([^&=]+)=([^&]*)") do args[k] = v end
      assert(p:handle_callback(args))
      refused("invalid_request", p:handle_callback { state = { "a", "b" }, code = "x" })
    end)
  end)

  describe("the customer refuses", function()
    for _, flow in ipairs { "2012", "identity" } do
      it(flow .. ": error=access_denied in the callback", function()
        e:configure { deny_authorization = true }
        local p = H.partner(e, flow)
        local callback = H.browse(assert(p:authorize_url()))
        local err = refused("access_denied", p:handle_callback(callback))
        assert.matches("^the customer %(or Avalara%) refused the authorization: The user denied", err.message)
        assert.equal("The user denied the authorization", err.error_description)
        refused("state_replayed", p:handle_callback(callback))
        assert.equal(0, code_grants(flow))
      end)
    end
  end)

  describe("seed 003's errors of the code exchange", function()
    it("client_id not valid: invalid_client_id", function()
      local good, bad = H.partner(e, "2012"), H.partner(e, "2012", { client_id = "nobody" })
      local _, state = assert(bad:authorize_url())
      local code = H.browse(assert(good:authorize_url())):match("code=(%x+)")
      local err = refused("invalid_request", bad:handle_callback("code=" .. code .. "&state=" .. state))
      assert.equal("invalid_client_id", err.oauth_detail)
      assert.equal(400, err.status)
      assert.equal("Authorize request with invalid client_id:  ", err.error_description)
      assert.matches("^exchanging the authorization code: Authorize request with invalid client_id:", err.message)
    end)

    it("client_secret not consistent with the client_id: invalid_client_secret", function()
      local p = H.partner(e, "2012", { client_secret = "not-the-secret" })
      local err = refused("invalid_request", p:handle_callback(H.browse(assert(p:authorize_url()))))
      assert.equal("invalid_client_secret", err.oauth_detail)
      H.no_secret({ "not-the-secret" }, tostring(err), H.dump(err))
    end)

    it("the code is not valid, or already used: code_invalid", function()
      local p = H.partner(e, "2012")
      local callback = H.browse(assert(p:authorize_url()))
      local err = refused("invalid_grant", p:handle_callback((callback:gsub("code=%x+", "code=" .. ("0"):rep(32)))))
      assert.equal("code_invalid", err.oauth_detail)
      assert.equal("access_denied", err.error_description)
      local conn, used = H.connect(p)
      assert.truthy(conn)
      local _, state = assert(p:authorize_url())
      err = refused("invalid_grant", p:handle_callback((used:gsub("state=[^&]*", "state=" .. state))))
      assert.equal("code_invalid", err.oauth_detail)
    end)

    it("no code in the callback: code_missing, before any request", function()
      local p = H.partner(e, "2012")
      local callback = H.browse(assert(p:authorize_url()))
      local err = refused("code_missing", p:handle_callback((callback:gsub("code=%x+&", ""))))
      assert.is_nil(err.oauth_detail) -- the partner's own finding, not a server's answer
      assert.equal(0, code_grants("2012"))
    end)

    it("the code missing as the server sees it, and an unknown grant type (sent by a rewriting transport)", function()
      local p = H.partner(e, "2012", { transport = H.transport(false, function(req)
        req.body = req.body:gsub("code=%x+&", "") end) })
      local err = refused("invalid_grant", p:handle_callback(H.browse(assert(p:authorize_url()))))
      assert.equal("code_missing", err.oauth_detail)
      assert.equal("Value cannot be empty.\r\nParameter name: accessGrantId", err.error_description)
      p = H.partner(e, "2012", { transport = H.transport(false, function(req)
        req.body = req.body:gsub("grant_type=authorization_code", "grant_type=implicit") end) })
      err = refused("unsupported_grant_type", p:handle_callback(H.browse(assert(p:authorize_url()))))
      assert.equal("unsupported_grant_type", err.oauth_detail)
      assert.equal("This access grant type is not supported by this server.", err.error_description)
    end)

    it("identity: a wrong secret is invalid_client", function()
      local p = H.partner(e, "identity", { client_secret = "WRONG-KEY" })
      local err = refused("invalid_client", p:handle_callback(H.browse(assert(p:authorize_url()))))
      assert.equal("invalid_client", err.oauth_detail)
      assert.equal(400, err.status)  -- IdentityServer's status for it
    end)
  end)

  describe("seed 003's errors of the refresh", function()
    -- A connection whose refresh goes through `rewrite`.
    local function refresh_with(rewrite)
      local p = H.partner(e, "2012", { transport = H.transport(false, function(req)
        if req.body and req.body:find("grant_type=refresh_token", 1, true) then rewrite(req) end
      end) })
      local conn = H.connect(p, { company_id = H.COMPANY })
      e:request("POST", "/_emulator/tokens/expire")
      local _, err = assert(p:client(conn.id)):sections()
      return p, conn, err
    end

    it("refresh_token missing: refresh_token_missing, the connection is kept", function()
      local p, conn, err = refresh_with(function(req) req.body = req.body:gsub("refresh_token=[^&]*", "refresh_token=") end)
      refused("invalid_token", nil, err)
      assert.equal("refresh_token_missing", err.oauth_detail)
      assert.equal("connected", assert(p:connections())[1].status)
      assert(assert(H.partner(e, "2012", { store = p.store }):client(conn.id)):sections()) -- and still works
    end)

    it("refresh_token not valid (access_denied): reauthorize", function()
      local p, _, err = refresh_with(function(req) req.body = req.body:gsub("refresh_token=%x+", "refresh_token=" .. ("0"):rep(32)) end)
      refused("reauthorize", nil, err)
      assert.equal("invalid_token", err.oauth_detail)
      assert.matches("no longer authorized %(its refresh token was refused: access_denied%): the customer must reconnect",
        err.message)
      assert.equal("reauthorize", assert(p:connections())[1].status)
    end)

    it("a server that issues no refresh token: reauthorize once the access token is refused", function()
      local inner = H.transport(false)
      local p = H.partner(e, "identity", { transport = function(req) -- such a server's answers
        local resp, err = inner(req)
        if resp and resp.status == 200 and req.url:find("/connect/token$") then
          local body = cjson.decode(resp.body)
          body.refresh_token = nil
          resp.body = cjson.encode(body)
        end
        return resp, err
      end })
      local conn = H.connect(p, { company_id = H.COMPANY })
      assert.is_nil(H.record(p, conn.id).refresh_token)
      e:request("POST", "/_emulator/tokens/expire")
      local _, err = assert(p:client(conn.id)):sections()
      refused("reauthorize", nil, err)
      assert.matches("its access token was refused and the server issued no refresh token", err.message)
      assert.equal(0, H.refreshes(e, "identity"))
      assert.equal("reauthorize", assert(p:connections())[1].status)
    end)

    it("refresh_token already used or revoked (token revoked): reauthorize, then no more requests", function()
      local p = H.partner(e, "2012")
      local conn = H.connect(p, { company_id = H.COMPANY })
      local rec = H.record(p, conn.id)
      -- the customer revokes the authorization on Avalara's side
      assert.equal(200, assert(e:request("POST", "/oauth/revoke", { form = { client_id = H.PARTNER,
        client_secret = H.PARTNER_SECRET, token = rec.refresh_token } })).status)
      local client = assert(p:client(conn.id))
      local _, err = client:sections()
      refused("reauthorize", nil, err)
      assert.matches("token revoked", err.message)
      assert.equal(1, H.refreshes(e, "2012"))
      local before = e:counters().requests
      _, err = client:sections()
      refused("reauthorize", nil, err)
      assert.equal(before, e:counters().requests) -- known lost: no request at all
      -- reconnecting into the same id heals it
      assert.equal(conn.id, H.connect(p, { connection_id = conn.id }).id)
      assert(client:sections())
    end)
  end)
end)
