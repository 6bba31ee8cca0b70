-- core.request against the emulator: JSON in and out, argument checks, and
-- the mapping of every API error and fault to docs/design.md section 6, with no
-- secret in any error.
local core = require "avalara.core"
local cjson = require "cjson"
local emu = require "spec.support.emulator"

local ID, KEY = "2000000001", "DEMO-LICENSE-KEY-0001"
local SANDBOX_ID, SANDBOX_KEY = "2000000002", "DEMO-SANDBOX-KEY-0002"
local SECTIONS = "/api/v2/definitions/crossborder/sections"
local CREATE = "/api/v2/companies/1001/classifications/hs"
-- An HSClassificationModel with the 2019 ItemModel (docs/api-contracts.md section 8).
local function item(company, code)
  return { countryOfDestination = "US", item = { companyId = company, itemCode = code,
    description = "cotton t-shirt for men", itemGroup = "Clothing > Men" } }
end
local ITEM = item(1001, "TS-1")

describe("core.request", function()
  local e, token

  setup(function() e = emu.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function()
    e:reset() -- forgets issued tokens too
    token = e:token()
  end)

  local function get(path, extra)
    local args = { url = e.http_url .. path, token = token }
    for k, v in pairs(extra or {}) do args[k] = v end
    return core.request(args)
  end

  -- Every secret a test may have used; none may appear in an error.
  local function assert_no_secret(err, ...)
    local secrets = { token, KEY, SANDBOX_KEY, ... }
    for _, s in ipairs(secrets) do
      for _, text in ipairs { tostring(err), err.message or "", err.body or "",
                              err.error_description or "", err.code or "" } do
        assert.is_nil(text:find(s, 1, true), "secret found in: " .. text)
      end
    end
  end

  describe("arguments", function()
    local cases = {
      { {}, "core.request: 'url' must be a string (got nil)" },
      { { url = "http://127.0.0.1:1/", method = 1 }, "core.request: 'method' must be a string (got number)" },
      { { url = "http://127.0.0.1:1/", method = "GE T" }, "core.request: 'method' must be an HTTP method name" },
      { { url = "http://127.0.0.1:1/", headers = "x" }, "core.request: 'headers' must be a table (got string)" },
      { { url = "http://127.0.0.1:1/", headers = { [1] = "x" } }, "core.request: 'headers' must map names to string values" },
      { { url = "http://127.0.0.1:1/", headers = { ["X-A\r\nX-B"] = "b" } },
        "core.request: 'headers' has a bad name (a name has no ':', space or control character)" },
      { { url = "http://127.0.0.1:1/", token = 5 }, "core.request: 'token' must be a token or a string (got number)" },
      { { url = "http://127.0.0.1:1/", body = 5 }, "core.request: 'body' must be a table or a string (got number)" },
      { { url = "ftp://127.0.0.1/x" }, "core.request: 'url' must be an http:// or https:// URL" },
      { { url = "http://api.example.com/x", token = "t" }, "core.request: 'url' is plain http:// to a host that "
        .. "is not loopback: credentials would travel in clear text (use https://, or pass allow_http = true)" },
      { { url = "http://127.0.0.1:1/", allow_http = "yes" }, "bad option 'allow_http' (boolean expected, got string)" },
    }
    -- values (a token, a header value, a URL's bytes) give nil, err instead:
    -- spec/integration/core/header_injection_security_spec.lua
    for _, case in ipairs(cases) do
      it("raises: " .. case[2], function()
        assert.has_error(function() core.request(case[1]) end, case[2])
      end)
    end

    it("raises when the body cannot be encoded as JSON", function()
      local ok, msg = pcall(core.request, { url = "http://127.0.0.1:1/", body = { f = print } })
      assert.is_false(ok)
      assert.truthy(msg:find("core.request: 'body' cannot be encoded as JSON", 1, true))
    end)

    it("raises on a closed token, and takes an open one", function()
      local tok = assert(core.client_credentials { token_url = e.http_url .. "/connect/token",
        client_id = ID, client_secret = KEY, scope = "hs-code-classification" })
      local status = core.request { url = e.http_url .. SECTIONS, token = tok }
      assert.equal(200, status)
      tok:close()
      assert.has_error(function() core.request { url = e.http_url .. SECTIONS, token = tok } end)
    end)

    it("raises when the argument is not a table", function()
      assert.has_error(function() core.request("http://x/") end)
    end)
  end)

  describe("success", function()
    it("GETs the HS sections over HTTP with decoded JSON and lower-cased headers", function()
      local status, body, headers = get(SECTIONS)
      assert.equal(200, status)
      assert.is_table(body.value)
      assert.truthy(#body.value > 10)
      assert.equal("I", body.value[1].hsCode)
      assert.equal("LIVE ANIMALS; ANIMAL PRODUCTS", body.value[1].description)
      assert.truthy(headers["content-type"]:find("application/json", 1, true))
      assert.is_string(headers["x-correlation-id"])
      if math.type then assert.equal("integer", math.type(body["@recordsetCount"])) end
    end)

    it("GETs over HTTPS with the test CA", function()
      local status, body = core.request { url = e.https_url .. "/api/v2/definitions/crossborder/US/01",
                                          token = token, cafile = e.ca_file }
      assert.equal(200, status)
      assert.equal("0101", body.value[1].hsCode)
    end)

    it("POSTs a table as JSON and reads back the created model, then PUTs it", function()
      local status, model = core.request { method = "POST", url = e.http_url .. CREATE, token = token, body = ITEM }
      assert.equal(201, status)
      assert.is_string(model.id)
      assert.equal("PENDING", model.status)
      assert.equal("cotton t-shirt for men", model.item.description)
      local s2, again = get(CREATE .. "/" .. model.id)
      assert.equal(200, s2)
      assert.equal(model.id, again.id)
      local s3, put = core.request { method = "PUT", url = e.http_url .. CREATE .. "/" .. model.id,
                                     token = token, body = cjson.encode(ITEM) }
      assert.equal(200, s3)
      assert.equal(model.id, put.id)
    end)

    it("gives a nil body for an empty 2xx response", function()
      local status, body, headers = core.request { method = "POST", url = e.http_url .. "/connect/revocation",
        headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
        body = "token=whatever&client_id=" .. ID .. "&client_secret=" .. KEY }
      assert.equal(200, status)
      assert.is_nil(body)
      assert.is_table(headers)
    end)

    it("keeps JSON null as cjson.null", function()
      local _, body = core.request { url = "http://x.invalid/", transport = function()
        return { status = 200, body = '{"a":null,"b":[1,null]}' }
      end }
      assert.equal(cjson.null, body.a)
      assert.equal(cjson.null, body.b[2])
    end)

    it("builds the headers table only when asked: response_headers = false gives status and body", function()
      local n = select("#", get(SECTIONS, { response_headers = false }))
      assert.equal(2, n)
      local status, body, headers = get(SECTIONS, { response_headers = false })
      assert.equal(200, status)
      assert.equal("I", body.value[1].hsCode)
      assert.is_nil(headers)
      assert.is_table(select(3, get(SECTIONS, { response_headers = true })))
      -- an exchange finished from a Lua transport, and core.multi, honour it too
      local ex = core.prepare_request { url = e.http_url .. SECTIONS, response_headers = false }
      assert.equal(2, select("#", ex:finish { status = 200, headers = { ["X-A"] = "1" }, body = "{}" }))
      local m = core.multi()
      m:add { url = e.http_url .. SECTIONS, token = token, response_headers = false }
      local done = {}
      while #done == 0 do done = m:poll(1) end
      assert.equal(200, done[1].status)
      assert.is_nil(done[1].headers)
      -- failures still read their headers: the request id and Retry-After
      e:fault("definitions_sections", "429", 1, { retry_after = 3 })
      local _, err = get(SECTIONS, { response_headers = false })
      assert.equal(3, err.retry_after)
      assert.is_string(err.request_id)
      assert.has_error(function() get(SECTIONS, { response_headers = "no" }) end,
        "core.request: 'response_headers' must be a boolean (got string)")
    end)

    it("reads its fields as the caller sees them: a proxy's __index, other keys ignored", function()
      local args = { url = e.http_url .. SECTIONS, token = token, response_headers = false, timeout = 5 }
      local proxy = setmetatable({}, { __index = args })
      assert.equal(2, select("#", core.request(proxy)))
      local extra = { url = args.url, token = token, [1] = "x", [true] = 1, [("k"):rep(60)] = 1, unknown = 1 }
      assert.equal(200, (core.request(extra)))
      -- a key built at run time is the same field as the literal one
      local built = { [("ur") .. "l"] = args.url, [("tok") .. "en"] = token, [("response_") .. "headers"] = false }
      assert.equal(2, select("#", core.request(built)))
      assert.has_error(function() core.request { url = args.url, token = token, [("time") .. "out"] = "x" } end,
        "bad option 'timeout' (number of seconds expected, got string)")
    end)

    it("accepts an authorization value instead of a token", function()
      assert.equal(200, (core.request { url = e.http_url .. SECTIONS, authorization = "Bearer " .. token }))
      assert.equal(200, (core.request { url = e.http_url .. SECTIONS,
                                        headers = { authorization = "Bearer " .. token } }))
    end)
  end)

  describe("errors", function()
    it("maps a missing token to oauth AuthenticationIncomplete needing a refresh", function()
      local status, err = core.request { url = e.http_url .. SECTIONS }
      assert.is_nil(status)
      assert.equal("oauth", err.kind)
      assert.equal("AuthenticationIncomplete", err.code)
      assert.equal(401, err.status)
      assert.is_false(err.retryable)
      assert.is_true(err.needs_refresh)
      assert.is_string(err.request_id)
      assert.truthy(err.body:find("AuthenticationIncomplete", 1, true))
    end)

    it("maps an unknown or expired token to oauth BearerTokenInvalid needing a refresh", function()
      local _, err = get(SECTIONS, { token = "0123456789abcdef0123456789abcdef" })
      assert.equal("oauth", err.kind)
      assert.equal("BearerTokenInvalid", err.code)
      assert.is_true(err.needs_refresh)
      assert.is_false(err.retryable)
      assert.truthy(tostring(err):find("^avalara: oauth error %(status 401%) BearerTokenInvalid: "))
      e:request("POST", "/_emulator/tokens/expire")
      _, err = get(SECTIONS)
      assert.equal("BearerTokenInvalid", err.code)
      assert.is_true(err.needs_refresh)
      assert_no_secret(err)
    end)

    it("maps 403 AuthorizationException to kind permission, not retryable, worth one renewal", function()
      local profile = e:token("profile")
      local _, err = get(SECTIONS, { token = profile })
      assert.equal("permission", err.kind)
      assert.equal("AuthorizationException", err.code)
      assert.equal(31, err.number)
      assert.equal(403, err.status)
      assert.is_false(err.retryable)
      assert.is_true(err.needs_refresh)
      assert.truthy(err.message:find("^permission denied: the token's scope or the company does not allow this "
        .. "call: Authorization failed%. %(This service or operation is not authorized"), err.message)
      assert_no_secret(err, profile)
    end)

    it("maps any 403 to kind permission worth one renewal (RFC 6750, HTML), and codes 36 and 608 by code", function()
      local function answer(status, ctype, body)
        local _, err = core.request { url = "http://x.invalid/", transport = function()
          return { status = status, headers = { ["Content-Type"] = ctype }, body = body }
        end }
        return err
      end
      local err = answer(403, "application/json", '{"error":"insufficient_scope","error_description":"scope"}')
      assert.equal("permission", err.kind)
      assert.equal("insufficient_scope", err.code)
      assert.is_true(err.needs_refresh)
      err = answer(403, "text/html", "<html>Forbidden</html>")
      assert.equal("permission", err.kind)
      assert.matches("HTTP status 403 with an HTML body", err.message)
      for _, status in ipairs { 401, 403, 500 } do
        err = answer(status, "application/json", '{"error":{"code":"IdentityServerError","message":"m"}}')
        assert.equal("api", err.kind)
        assert.is_true(err.retryable)
        assert.is_false(err.needs_refresh)
        err = answer(status, "application/json", '{"error":{"code":"AvalaraIdentityApiError","message":"m"}}')
        assert.equal("api", err.kind)
        assert.is_false(err.retryable)
        assert.is_false(err.needs_refresh)
      end
    end)

    it("maps 404, 415 and 422 to kind api with the code and a readable message", function()
      local _, err = get(CREATE .. "/no-such-id")
      assert.equal("api", err.kind)
      assert.equal("EntityNotFoundError", err.code)
      assert.equal(4, err.number)
      assert.equal(404, err.status)
      assert.is_false(err.retryable)
      _, err = core.request { method = "POST", url = e.http_url .. CREATE, token = token,
                              body = "description=shirt", headers = { ["Content-Type"] = "text/plain" } }
      assert.equal("UnsupportedMediaType", err.code)
      assert.equal(415, err.status)
      _, err = core.request { method = "POST", url = e.http_url .. CREATE, token = token, body = { item = {} } }
      assert.equal("api", err.kind)
      assert.equal("ValidationException", err.code)
      assert.equal(422, err.status)
      assert.truthy(err.message:find("Please provide a value for field", 1, true), err.message)
      assert_no_secret(err)
    end)

    it("maps RequestLimitExceeded to kind quota, not retryable", function()
      e:configure { quotas = { [SANDBOX_ID] = 1 } }
      local sandbox = e:token(nil, SANDBOX_ID, SANDBOX_KEY)
      local url = e.http_url .. "/api/v2/companies/1002/classifications/hs"
      assert.equal(201, (core.request { method = "POST", url = url, token = sandbox, body = item(1002, "TS-1") }))
      local status, err = core.request { method = "POST", url = url, token = sandbox, body = item(1002, "TS-2") }
      assert.is_nil(status)
      assert.equal("quota", err.kind)
      assert.equal("RequestLimitExceeded", err.code)
      assert.equal(429, err.status)
      assert.is_false(err.retryable)
      assert.is_nil(err.retry_after)
      assert_no_secret(err, sandbox)
    end)

    it("maps a rate limit (429 with Retry-After) to kind api, retryable, with retry_after", function()
      e:configure { rate_limit = { requests = 1, window = 30 } }
      assert.equal(200, (get(SECTIONS)))
      local _, err = get(SECTIONS)
      assert.equal("api", err.kind)
      assert.equal("RateLimitExceeded", err.code)
      assert.equal(429, err.status)
      assert.is_true(err.retryable)
      assert.is_number(err.retry_after)
      assert.truthy(err.retry_after >= 1 and err.retry_after <= 31)
      e:configure { rate_limit = false }
      e:fault("definitions_sections", "429", 1, { retry_after = 3 })
      _, err = get(SECTIONS)
      assert.equal("RateLimitExceeded", err.code)
      assert.equal(3, err.retry_after)
      assert.is_true(err.retryable)
    end)

    it("reads Retry-After given as an HTTP date", function()
      local when = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 120)
      local _, err = core.request { url = "http://x.invalid/", transport = function()
        return { status = 503, headers = { ["Retry-After"] = when }, body = "" }
      end }
      assert.equal("http", err.kind)
      assert.truthy(err.retry_after > 100 and err.retry_after <= 120, tostring(err.retry_after))
    end)

    it("maps 500, 502 and 503 to kind api, retryable; 503 with retry_after", function()
      for _, code in ipairs { "500", "502", "503" } do
        e:fault("definitions_sections", code, 1, { retry_after = 5 })
        local _, err = get(SECTIONS)
        assert.equal("api", err.kind)
        assert.equal(tonumber(code), err.status)
        assert.is_true(err.retryable)
        if code == "503" then assert.equal(5, err.retry_after) end
        assert_no_secret(err)
      end
    end)

    it("maps an HTML error page to kind http keeping status and body", function()
      e:fault("definitions_sections", "html")
      local _, err = get(SECTIONS)
      assert.equal("http", err.kind)
      assert.equal(502, err.status)
      assert.is_true(err.retryable)
      assert.equal("HTTP status 502 with an HTML body", err.message)
      assert.truthy(err.body:find("<html>", 1, true))
    end)

    it("maps invalid JSON in a 2xx to kind parse keeping status and body", function()
      e:fault("definitions_sections", "invalid_json")
      local _, err = get(SECTIONS)
      assert.equal("parse", err.kind)
      assert.equal(200, err.status)
      assert.is_false(err.retryable)
      assert.equal('{"status":"PENDING","id":<html>', err.body)
      assert.is_string(err.request_id)
    end)

    it("maps a truncated response to parse (2xx) or http, retryable, with the partial body", function()
      e:fault("definitions_sections", "truncated")
      local _, err = get(SECTIONS)
      assert.equal("parse", err.kind)
      assert.equal(200, err.status)
      assert.is_true(err.retryable)
      assert.truthy(err.body:find('"this body is cut', 1, true))
      e:fault("definitions_sections", "truncated", 1, { status = 500 })
      _, err = get(SECTIONS)
      assert.equal("http", err.kind)
      assert.equal(500, err.status)
    end)

    it("maps empty and unknown non-2xx bodies to kind http, retryable only for 408/429/5xx", function()
      local function reply(status, body)
        local _, err = core.request { url = "http://x.invalid/", transport = function()
          return { status = status, body = body }
        end }
        return err
      end
      local err = reply(500, "")
      assert.equal("http", err.kind)
      assert.equal("HTTP status 500 with an empty body", err.message)
      assert.is_true(err.retryable)
      assert.is_true(reply(408, "").retryable)
      assert.is_false(reply(400, "nope").retryable)
      assert.equal("HTTP status 400 with a body that is not an API error", reply(400, "nope").message)
      assert.is_true(reply(401, "").needs_refresh)
    end)

    it("maps an RFC 6750 error body to kind oauth", function()
      local _, err = core.request { url = "http://x.invalid/", transport = function()
        return { status = 401, body = '{"error":"invalid_token","error_description":"The token expired"}' }
      end }
      assert.equal("oauth", err.kind)
      assert.equal("invalid_token", err.code)
      assert.equal("The token expired", err.error_description)
      assert.is_true(err.needs_refresh)
      assert.is_false(err.retryable)
    end)

    it("truncates the body to 4 KiB", function()
      local _, err = core.request { url = "http://x.invalid/", transport = function()
        return { status = 500, body = string.rep("z", 10000) }
      end }
      assert.equal(4096, #err.body)
    end)
  end)

  describe("secrets", function()
    it("never shows the access token, even when the server or transport echoes it", function()
      local errs = {}
      local function collect(...)
        local _, err = ...
        assert.is_table(err)
        errs[#errs + 1] = err
      end
      local echo = function(req)
        local auth = req.headers.Authorization
        return { status = 400, headers = { ["X-Correlation-Id"] = auth },
                 body = cjson.encode { error = { code = auth, message = "bad token " .. auth } } }
      end
      collect(core.request { url = "http://x.invalid/", token = token, transport = echo })
      collect(core.request { url = "http://x.invalid/", token = token,
                             transport = function(req) error("cannot send " .. req.headers.Authorization) end })
      collect(core.request { url = "http://x.invalid/", token = token, transport = function(req)
        return nil, { kind = "tls", message = req.headers.Authorization }
      end })
      collect(core.request { url = "http://x.invalid/", token = token, transport = function(req)
        return { status = 200, body = "not json " .. req.headers.Authorization }
      end })
      collect(core.request { url = "http://x.invalid/", token = token, transport = function(req)
        local auth = req.headers.Authorization
        return { status = 401, body = '{"error":"invalid_token","error_description":"' .. auth .. '"}' }
      end })
      for _, kind in ipairs { "500", "502", "503", "429", "html", "invalid_json", "truncated" } do
        e:fault("definitions_sections", kind)
        collect(get(SECTIONS))
      end
      e:fault("definitions_sections", "reset", 2)
      collect(get(SECTIONS))
      e:fault("definitions_sections", "stall", 1, { stall_seconds = 3 })
      collect(get(SECTIONS, { timeout = 0.3 }))
      e:fault("definitions_sections", "oversized", 1, { size = 100000 })
      collect(get(SECTIONS, { max_body = 1000 }))
      collect(get(CREATE .. "/missing"))
      collect(core.request { url = e.https_url .. SECTIONS, token = token })
      collect(get(SECTIONS, { token = token .. "x" }))
      assert.equal(18, #errs)
      for _, err in ipairs(errs) do
        assert.truthy(core.is_error(err))
        assert_no_secret(err, token .. "x")
      end
      -- The redaction is visible where the token was echoed.
      assert.truthy(tostring(errs[1]):find("[REDACTED]", 1, true))
      assert.truthy(errs[1].body:find("[REDACTED]", 1, true))
      assert.equal("[REDACTED]", errs[1].request_id)
    end)
  end)

  describe("error objects", function()
    it("core.error gives a Lua table the error metatable and checks its kind", function()
      local err = core.error { kind = "api", status = 409, code = "Conflict", message = "taken", request_id = "r1" }
      assert.is_true(core.is_error(err))
      assert.is_false(err.retryable)
      assert.equal("avalara: api error (status 409) Conflict: taken [request id r1]", tostring(err))
      assert.equal("avalara: timeout error: slow", tostring(core.error { kind = "timeout", message = "slow" }))
      assert.has_error(function() core.error { kind = "nope", message = "x" } end)
      assert.has_error(function() core.error { kind = "api" } end)
      assert.is_false(core.is_error({}))
      assert.is_false(core.is_error("x"))
    end)
  end)
end)
