-- The authorize endpoints (2012 /oauth/authorize and Identity's
-- /connect/authorize) as partner integrations meet them: a loopback redirect
-- URI on any port (RFC 8252 section 7.3), and a customer who refuses
-- (deny_authorization), redirected with error=access_denied and the state.
local emu = require "spec.support.emulator"

local FLOWS = {
  { name = "2012", path = "/oauth/authorize", client = "demo-partner", token = "/oauth/access_token",
    secret = "demo-partner-secret" },
  { name = "Identity", path = "/connect/authorize", client = "2000000001", token = "/connect/token",
    secret = "DEMO-LICENSE-KEY-0001" },
}

describe("emulator authorize endpoints", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function() e:reset() end)

  local function authorize(flow, redirect_uri, state)
    return assert(e:request("GET", flow.path .. "?" .. emu.form_encode({ client_id = flow.client,
      redirect_uri = redirect_uri, response_type = "code", state = state })))
  end

  for _, flow in ipairs(FLOWS) do
    describe(flow.name, function()
      it("accepts the registered loopback redirect URI on any port, and the code only for that URI", function()
        local uri = "http://127.0.0.1:49152/callback"
        local res = authorize(flow, uri, "s1")
        assert.equal(302, res.status)
        local code = res.headers.location:match("^" .. uri:gsub("%p", "%%%0") .. "%?code=(%x+)")
        assert.truthy(code, res.headers.location)
        local form = { client_id = flow.client, client_secret = flow.secret, grant_type = "authorization_code",
          code = code, redirect_uri = "http://127.0.0.1:49153/callback" }
        assert.equal(400, assert(e:request("POST", flow.token, { form = form })).status) -- another port: not its URI
        res = authorize(flow, uri, "s2")
        form.code, form.redirect_uri = res.headers.location:match("code=(%x+)"), uri
        assert.equal(200, assert(e:request("POST", flow.token, { form = form })).status)
      end)

      it("refuses other paths, hosts and schemes on loopback", function()
        for _, uri in ipairs { "http://127.0.0.1:8080/other", "http://localhost:8080/callback",
          "https://127.0.0.1:8080/callback", "http://127.0.0.2:8080/callback" } do
          assert.equal(400, authorize(flow, uri, "s").status, uri)
        end
      end)

      it("redirects with error=access_denied and the state when the customer refuses", function()
        e:configure { deny_authorization = true }
        local res = authorize(flow, "http://127.0.0.1/callback", "st 1")
        assert.equal(302, res.status)
        local loc = res.headers.location
        assert.matches("^http://127%.0%.0%.1/callback%?error=access_denied&error_description=", loc)
        assert.matches("&state=st%%201$", loc)
        assert.falsy(loc:find("code=", 1, true))
      end)
    end)
  end
end)
