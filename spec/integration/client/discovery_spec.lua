-- avalara.discover(issuer) and avalara.new{ issuer = ... }: the discovery document, cached per
-- issuer for its lifetime, and the endpoints a client takes from it (docs/client.md, "Discovery").
local avalara = require "avalara"
local clock = require "avalara.clock"
local discovery = require "avalara.token.discovery"
local emu = require "spec.support.emulator"
local H = require "spec.support.client"

describe("discovery", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function()
    e:reset()
    discovery.clear()
  end)
  after_each(function() clock.reset() end)

  local function fetched() return H.route(e, "openid_configuration") end

  it("avalara.discover returns the issuer's document #smoke", function()
    local doc = assert(avalara.discover(e.http_url))
    assert.equal(e.http_url, doc.issuer)
    assert.equal(e.http_url .. "/connect/token", doc.token_endpoint)
    assert.equal(e.http_url .. "/connect/revocation", doc.revocation_endpoint)
    assert.equal(e.http_url .. "/connect/deviceauthorization", doc.device_authorization_endpoint)
    local n = 0
    for _ in pairs(doc) do n = n + 1 end
    assert.equal(24, n)
    -- a trailing slash names the same issuer, and the same cache entry
    assert.equal(doc.token_endpoint, assert(avalara.discover(e.http_url .. "/")).token_endpoint)
    assert.equal(1, fetched())
    -- what the caller changes in its copy does not change the cache
    doc.token_endpoint = "x"
    assert.equal(e.http_url .. "/connect/token", avalara.discover(e.http_url).token_endpoint)
  end)

  it("keeps the document for its Cache-Control max-age, else an hour", function()
    assert(avalara.discover(e.http_url))
    clock.advance(discovery.DEFAULT_MAX_AGE - 1)
    assert(avalara.discover(e.http_url))
    assert.equal(1, fetched())
    clock.advance(2)
    assert(avalara.discover(e.http_url))
    assert.equal(2, fetched())

    discovery.clear()
    e:configure({ discovery_max_age = 60 })
    assert(avalara.discover(e.http_url))
    clock.advance(59)
    assert(avalara.discover(e.http_url))
    assert.equal(3, fetched())
    clock.advance(2)
    assert(avalara.discover(e.http_url))
    assert.equal(4, fetched())
  end)

  it("keeps nothing an answer says not to keep (no-store)", function()
    local calls = 0
    local body = '{"issuer":"https://id.example","token_endpoint":"https://id.example/connect/token"}'
    local function transport()
      calls = calls + 1
      return { status = 200, headers = { ["Content-Type"] = "application/json", ["Cache-Control"] = "no-store" },
        body = body }
    end
    for _ = 1, 2 do
      assert.equal("https://id.example/connect/token",
        assert(avalara.discover("https://id.example", { transport = transport })).token_endpoint)
    end
    assert.equal(2, calls)
  end)

  it("fails with nil, err: the server's error, another issuer, not a document", function()
    e:fault("openid_configuration", "500")
    local doc, err = avalara.discover(e.http_url)
    assert.is_nil(doc)
    assert.equal("api", err.kind)
    assert.equal(500, err.status)
    local function serving(body)
      return { transport = function()
        return { status = 200, headers = { ["Content-Type"] = "application/json" }, body = body }
      end }
    end
    -- a document must name the issuer it was asked for (OpenID Connect Discovery 4.3)
    doc, err = avalara.discover("https://id.example", serving('{"issuer":"https://evil.example",'
      .. '"token_endpoint":"https://evil.example/connect/token"}'))
    assert.is_nil(doc)
    assert.equal("parse", err.kind)
    assert.matches("names another issuer", err.message)
    doc, err = avalara.discover("https://id.example", serving('{"issuer":"https://id.example"}'))
    assert.is_nil(doc)
    assert.matches("has no token_endpoint", err.message)
    doc, err = avalara.discover("https://id.example", serving('[1]'))
    assert.is_nil(doc)
    assert.equal("parse", err.kind)
  end)

  it("raises on a wrong argument, before any request", function()
    for _, bad in ipairs { 42, "identity.avalara.com", "https://id.example/a b", "https://id.example?x=1" } do
      local ok, msg = pcall(avalara.discover, bad)
      assert.is_false(ok)
      assert.matches("^avalara.discover: 'issuer' must", msg)
    end
    assert.equal(0, fetched())
  end)

  it("docs/client.md's Discovery example runs and prints what it says", function()
    local readme = require "spec.support.readme"
    local printed = readme.run(readme.block("Discovery"), e.http_url)
    assert.same({ e.http_url .. "/connect/token", e.http_url .. "/connect/deviceauthorization",
      e.http_url .. "/connect/revocation" }, printed)
  end)

  describe("avalara.new{ issuer = ... }", function()
    local function client(opts)
      local o = { issuer = e.http_url }
      for k, v in pairs(opts or {}) do o[k] = v end
      return H.client(e, o)
    end

    it("finds the token endpoint in the document, once for the document's lifetime", function()
      local c = client()
      assert.equal(21, #assert(c:sections()))
      assert.equal(1, fetched())
      assert.equal(1, H.grants(e))
      assert.same({ token_endpoint = e.http_url .. "/connect/token",
        revocation_endpoint = e.http_url .. "/connect/revocation",
        device_authorization_endpoint = e.http_url .. "/connect/deviceauthorization" }, c:endpoints())
      -- a renewal asks the cache, not the issuer
      assert(e:request("POST", "/_emulator/tokens/expire"))
      assert(c:sections())
      assert.equal(2, H.grants(e))
      assert.equal(1, fetched())
    end)

    it("falls back to the issuer's /connect/token when the document cannot be had, with a warning", function()
      local warnings = {}
      e:fault("openid_configuration", "503", 1, { retry_after = 0 })
      local c = client({ on_warning = function(m) warnings[#warnings + 1] = m end })
      assert.equal(21, #assert(c:sections()))
      assert.equal(1, #warnings)
      assert.matches("no discovery document from " .. e.http_url:gsub("%p", "%%%0"), warnings[1])
      assert.matches("using " .. (e.http_url .. "/connect/token"):gsub("%p", "%%%0"), warnings[1])
      assert.equal(1, H.grants(e))
    end)

    it("raises for a bad issuer, or with token_url too; the environments need none", function()
      local ok, msg = pcall(client, { token_url = e.http_url .. "/connect/token" })
      assert.is_false(ok)
      assert.matches("avalara.new: give 'issuer' or 'token_url', not both", msg, 1, true)
      ok, msg = pcall(client, { issuer = "identity.avalara.com" })
      assert.is_false(ok)
      assert.matches("'issuer' must be an http(s) URL", msg, 1, true)
      ok, msg = pcall(client, { issuer = "http://identity.example.com" })
      assert.is_false(ok)
      assert.matches("'issuer'", msg, 1, true)
      -- without it: the environment's token URL, and what it implies
      local plain = H.client(e)
      assert.same({ token_endpoint = e.http_url .. "/connect/token",
        revocation_endpoint = e.http_url .. "/connect/revocation",
        device_authorization_endpoint = e.http_url .. "/connect/deviceauthorization" }, plain:endpoints())
      assert.equal("https://identity.avalara.com/connect/token",
        avalara.new { account_id = "1", license_key = "k" }:endpoints().token_endpoint)
      assert(plain:sections())
      assert.equal(0, fetched())
    end)
  end)
end)
