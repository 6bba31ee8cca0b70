-- The partner authorization lifecycle (seed 002) against the emulator, for
-- the 2012 OAuth service and for Identity's authorization_code grant with
-- PKCE: authorize, callback, calls on the customer's behalf, one refresh when
-- the access token dies, disconnect (the old tokens are then refused by the
-- server); connections listed without secrets; the 2012 self-grant.
local avalara = require "avalara"
local emu = require "spec.support.emulator"
local H = require "spec.support.partner"

local ITEM = { itemCode = "TS-1", description = "men's cotton t-shirt" }

describe("partner lifecycle", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function() e:reset() end)

  -- The server's answer to a refresh with `rt` (sent by hand, not through the library).
  local function refresh_by_hand(flow, rt)
    local path = flow == "identity" and "/connect/token" or "/oauth/access_token"
    local form = { grant_type = "refresh_token", refresh_token = rt, client_id = H.PARTNER,
      client_secret = H.PARTNER_SECRET }
    if flow == "identity" then form.client_id, form.client_secret = H.ACCOUNT, H.KEY end
    return assert(e:request("POST", path, { form = form }))
  end

  for _, flow in ipairs { "2012", "identity" } do
    describe("flow " .. flow, function()
      it("connects, classifies on the customer's behalf, refreshes once, disconnects #smoke", function()
        local p = H.partner(e, flow)
        local url, state = p:authorize_url { company_id = H.COMPANY }
        assert.is_true(#state >= 43) -- 256 random bits, base64url
        assert.truthy(url:find("state=" .. state, 1, true))
        if flow == "identity" then
          assert.matches("&code_challenge=[%w_%-]+&code_challenge_method=S256$", url)
          assert.matches("^" .. e.http_url:gsub("%p", "%%%0") .. "/connect/authorize%?", url)
        else
          assert.matches("^" .. e.http_url:gsub("%p", "%%%0") .. "/oauth/authorize%?", url)
        end
        local callback = H.browse(url)
        local conn = assert(p:handle_callback(callback))
        assert.matches("^%x+$", conn.id)
        assert.equal(flow, conn.flow)
        assert.equal(H.COMPANY, conn.company_id)
        assert.equal("connected", conn.status)
        assert.equal(flow == "identity" and "hs-code-classification" or "CompanyUser", conn.scope)
        assert.is_number(conn.created_at)
        local rec = H.record(p, conn.id)
        local first_refresh = rec.refresh_token
        local secrets = { rec.access_token, rec.refresh_token, H.PARTNER_SECRET, H.KEY }
        assert.is_nil(conn.access_token)
        assert.is_nil(conn.refresh_token)
        H.no_secret(secrets, H.dump(conn), tostring(p))

        local client = assert(p:client(conn.id))
        local model = assert(client:classify(ITEM, { country = "US" }))
        model = assert(client:wait(model, { timeout = 10, interval = 0.05 }))
        assert.equal("610910", model.hsCode)
        assert.equal(0, H.refreshes(e, flow))

        -- The access token dies; the next call is refused, refreshes once, and goes through.
        assert.equal(200, assert(e:request("POST", "/_emulator/tokens/expire")).status)
        local sections = assert(client:sections())
        assert.equal(21, #sections)
        assert.equal(1, H.refreshes(e, flow))
        rec = H.record(p, conn.id)
        assert.are_not.equal(first_refresh, rec.refresh_token) -- rotated, and stored
        assert(client:sections())
        assert.equal(1, H.refreshes(e, flow))
        -- the first refresh token was single-use
        local res = refresh_by_hand(flow, first_refresh)
        assert.equal(400, res.status)
        if flow == "2012" then
          assert.equal("error=invalid_token&error_description=token+revoked&state=", res.body)
        else
          assert.equal("invalid_grant", res.json.error)
        end

        assert.is_true(assert(p:disconnect(conn.id)))
        assert.same({}, assert(p:connections()))
        local gone, err = p:client(conn.id)
        assert.is_nil(gone)
        assert.equal("connection_unknown", err.code)
        local _, cerr = client:sections()
        assert.equal("connection_unknown", cerr.code)
        -- the server refuses the last refresh token and the last access token
        res = refresh_by_hand(flow, rec.refresh_token)
        assert.equal(400, res.status)
        if flow == "2012" then
          assert.equal("error=invalid_token&error_description=token+revoked&state=", res.body)
          assert.equal(1, e:counters().routes.oauth_revoke)
        else
          assert.equal("invalid_grant", res.json.error)
          assert.equal(2, e:counters().routes.connect_revocation)
        end
        local status, body = avalara.core.request { url = e.http_url .. "/api/v2/definitions/crossborder/sections",
          token = rec.access_token }
        assert.is_nil(status)
        assert.equal("BearerTokenInvalid", body.code)
        H.no_secret(secrets, tostring(err), H.dump(err), tostring(cerr))
      end)

      it("lists its connections oldest first, without secrets; reconnects into an existing id", function()
        local p = H.partner(e, flow)
        local a = H.connect(p, { company_id = H.COMPANY })
        local b = H.connect(p)
        local list = assert(p:connections())
        assert.equal(2, #list)
        local ids = { [a.id] = true, [b.id] = true }
        for _, c in ipairs(list) do
          assert.truthy(ids[c.id])
          assert.equal("connected", c.status)
        end
        assert.is_true(list[1].created_at <= list[2].created_at)
        local secrets = { H.record(p, a.id).access_token, H.record(p, a.id).refresh_token,
          H.record(p, b.id).refresh_token }
        H.no_secret(secrets, H.dump(list))
        -- reconnecting into a's id replaces its tokens (and revokes the old authorization)
        local again = H.connect(p, { connection_id = a.id })
        assert.equal(a.id, again.id)
        assert.equal(H.COMPANY, again.company_id) -- kept from the record it replaces
        assert.are_not.equal(secrets[2], H.record(p, a.id).refresh_token)
        assert.equal(2, #assert(p:connections()))
        assert.equal(400, refresh_by_hand(flow, secrets[2]).status)
      end)
    end)
  end

  it("identity: the code is bound to the PKCE verifier kept with the state", function()
    local p = H.partner(e, "identity")
    local callback = H.browse(assert(p:authorize_url()))
    local code = callback:match("[?&]code=(%x+)")
    local res = assert(e:request("POST", "/connect/token", { form = { grant_type = "authorization_code",
      code = code, redirect_uri = H.CALLBACK, client_id = H.ACCOUNT, client_secret = H.KEY } }))
    assert.equal(400, res.status) -- without the verifier the server refuses the code
    assert.equal("invalid_grant", res.json.error)
    assert(H.connect(p))          -- through the partner (which sends it) a new one works
  end)

  it("2012 self-grant: the partner's own connection, used and refreshed like the others", function()
    local p = H.partner(e, "2012")
    local conn = assert(p:self_grant { company_id = H.COMPANY })
    assert.equal("connected", conn.status)
    assert.equal(1, (e:counters().grants.oauth_generate_token or {}).generate_token)
    local client = assert(p:client(conn.id))
    assert(client:sections())
    e:request("POST", "/_emulator/tokens/expire")
    assert(client:sections())
    assert.equal(1, H.refreshes(e, "2012"))
    assert.is_true(assert(p:disconnect(conn.id)))
    assert.has_error(function() H.partner(e, "identity"):self_grant() end,
      "partner:self_grant: generate_token is a 2012 flow operation (with Identity, use avalara.new's client credentials)")
  end)

  it("uses the file store across partner objects (as separate runs would)", function()
    local dir = H.tmpdir()
    local path = dir .. "/sub/connections.db"
    local conn = H.connect(H.partner(e, "2012", { store = avalara.store.file(path) }), { company_id = H.COMPANY })
    local p2 = H.partner(e, "2012", { store = avalara.store.file(path) })
    assert.equal(conn.id, assert(p2:connections())[1].id)
    assert(assert(p2:client(conn.id)):sections())
    local mode = io.popen("stat -c %a " .. path):read("*l")
    assert.equal("600", mode)
    H.rmdir(dir)
  end)

  it("raises at once, naming the option, on bad input", function()
    local function new(o)
      local base = { client_id = "x", client_secret = "y", environment = "local", emulator_url = e.http_url }
      for k, v in pairs(o) do base[k] = v end
      return function() avalara.partner.new(base) end
    end
    assert.has_error(new { client_secret = false }, "avalara.partner.new: 'client_secret' must be a non-empty string")
    assert.has_error(new { flow = "implicit" }, "avalara.partner.new: 'flow' must be \"2012\" or \"identity\" (got implicit)")
    assert.has_error(new { environment = "sandbox" },
      "avalara.partner.new: 'environment' must be development, local, production for flow 2012 (got sandbox)")
    assert.has_error(new { store = { get = print } },
      "avalara.partner.new: 'store' must have get, set, cas, delete and lock (no 'set')")
    assert.has_error(new { urls = { token = "http://example.com/oauth/access_token" } },
      "avalara.partner.new: 'urls.token' is plain http:// to a host that is not loopback: credentials would "
      .. "travel in clear text (use https://, or pass allow_http = true)")
    local p = avalara.partner.new { client_id = "x", client_secret = "y", environment = "local",
      emulator_url = e.http_url }
    assert.has_error(function() p:authorize_url() end, "partner:authorize_url: the partner has no 'redirect_uri'")
    p = H.partner(e, "2012")
    assert.has_error(function() p:authorize_url { state = "short" } end,
      "partner:authorize_url: 'state' must be at least 22 URL-safe characters (A-Z a-z 0-9 - . _ ~)")
    assert.has_error(function() p:handle_callback(42) end,
      "partner:handle_callback: 'query' must be a query string or a table (got number)")
    assert.has_error(function() p:client(7) end, "partner:client: 'id' must be a string (got number)")
  end)
end)
