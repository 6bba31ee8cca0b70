-- The device authorization grant (RFC 8628) against a running emulator:
-- /connect/deviceauthorization, the token endpoint's device_code grant and
-- the verification page.
local emu = require "spec.support.emulator"

local ACCOUNT, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"
local GRANT = "urn:ietf:params:oauth:grant-type:device_code"

describe("emulator device authorization", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function() e:reset() end)

  local function start(form)
    return assert(e:request("POST", "/connect/deviceauthorization",
      { form = form or { client_id = "hscode-cli", scope = "hs-code-classification" } }))
  end

  local function poll(device_code, client)
    return assert(e:request("POST", "/connect/token", { form = { grant_type = GRANT, device_code = device_code,
      client_id = client or "hscode-cli" } }))
  end

  local function verify(form)
    return assert(e:request("POST", "/device", { form = form }))
  end

  it("answers RFC 8628 3.2's fields", function()
    local res = start()
    assert.equal(200, res.status)
    assert.equal("no-store", res.headers["cache-control"])
    local j = res.json
    assert.matches("^%x+$", j.device_code)
    assert.matches("^[B-Z][B-Z][B-Z][B-Z]%-[B-Z][B-Z][B-Z][B-Z]$", j.user_code)
    assert.not_matches("[AEIOUY]", j.user_code)
    assert.equal(e.http_url .. "/device", j.verification_uri)
    assert.equal(j.verification_uri .. "?user_code=" .. j.user_code, j.verification_uri_complete)
    assert.equal(300, j.expires_in)
    assert.equal(5, j.interval)
  end)

  it("authenticates confidential clients as /connect/token does", function()
    assert.equal(200, start({ client_id = ACCOUNT, client_secret = KEY }).status)
    local bad = start({ client_id = ACCOUNT, client_secret = "WRONG" })
    assert.equal("invalid_client", bad.json.error)
    assert.equal("invalid_client", start({ client_id = "no-such-client" }).json.error)
    local scope = start({ client_id = "hscode-cli", scope = "nope" })
    assert.equal(400, scope.status)
    assert.equal("invalid_scope", scope.json.error)
  end)

  it("is pending, then slow_down when polled faster than the interval, then the token once approved", function()
    local j = start().json
    local res = poll(j.device_code)
    assert.equal(400, res.status)
    assert.equal("authorization_pending", res.json.error)
    res = poll(j.device_code)
    assert.equal("slow_down", res.json.error)
    e:configure({ device_interval = 0 })
    -- the code's own interval grew by 5 s: still too fast
    assert.equal("slow_down", poll(j.device_code).json.error)

    local page = assert(e:request("GET", "/device?user_code=" .. j.user_code:lower()))
    assert.equal(200, page.status)
    assert.matches('value="' .. j.user_code .. '"', page.body, 1, true)
    assert.equal(400, verify({ user_code = j.user_code, action = "approve", account_id = ACCOUNT,
      license_key = "WRONG" }).status)
    assert.equal(200, verify({ user_code = j.user_code:gsub("%-", ""):lower(), action = "approve",
      account_id = ACCOUNT, license_key = KEY }).status)
    assert.equal(400, verify({ user_code = j.user_code, action = "deny" }).status) -- answered already
  end)

  it("issues the token once approved, and the device code once", function()
    e:configure({ device_interval = 0 })
    local j = start().json
    verify({ user_code = j.user_code, action = "approve", account_id = ACCOUNT, license_key = KEY })
    local res = poll(j.device_code)
    assert.equal(200, res.status)
    assert.equal("Bearer", res.json.token_type)
    assert.equal("hs-code-classification", res.json.scope)
    local api = assert(e:request("GET", "/api/v2/definitions/crossborder/sections",
      { headers = { Authorization = "Bearer " .. res.json.access_token } }))
    assert.equal(200, api.status)
    local again = poll(j.device_code)
    assert.equal(400, again.status)
    assert.equal("invalid_grant", again.json.error)
    -- another client cannot use a code it was not given
    local other = assert(e:request("POST", "/connect/token", { form = { grant_type = GRANT,
      device_code = start().json.device_code, client_id = ACCOUNT, client_secret = KEY } }))
    assert.equal("invalid_grant", other.json.error)
  end)

  it("answers access_denied after a denial, expired_token after the lifetime", function()
    e:configure({ device_interval = 0 })
    local j = start().json
    assert.equal(200, verify({ user_code = j.user_code, action = "deny" }).status)
    assert.equal("access_denied", poll(j.device_code).json.error)
    e:configure({ device_code_ttl = 0 })
    local k = start().json
    assert.equal(0, k.expires_in)
    local res = poll(k.device_code)
    assert.equal(400, res.status)
    assert.equal("expired_token", res.json.error)
    assert.equal(400, verify({ user_code = k.user_code, action = "deny" }).status)
  end)

  it("revokes a public client's token by client_id alone", function()
    e:configure({ device_interval = 0 })
    local j = start().json
    verify({ user_code = j.user_code, action = "approve", account_id = ACCOUNT, license_key = KEY })
    local tok = poll(j.device_code).json.access_token
    local rev = assert(e:request("POST", "/connect/revocation", { form = { token = tok, client_id = "hscode-cli" } }))
    assert.equal(200, rev.status)
    local api = assert(e:request("GET", "/api/v2/definitions/crossborder/sections",
      { headers = { Authorization = "Bearer " .. tok } }))
    assert.equal(401, api.status)
  end)
end)
