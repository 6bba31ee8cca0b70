-- The sans-I/O protocol layer (src/protocol/protocol.h) through core.protocol:
-- percent/form coding, JSON, datetimes, token responses, AvaTax errors.
local protocol = require("avalara.core").protocol

-- The 2012 sample success body (seed 003), trailing comma included.
local SAMPLE_2012 = '{"token_type":"avalara",\n'
  .. '"access_token":"a136c4debbc84be7911203cbbef8b629",\n'
  .. '"scope":"CompanyUser",\n'
  .. '"refresh_token":"71b5389c06b54f91b40135f8e0f39dd6",\n'
  .. '"expires_in":"9999-12-31T23:59:59.9970000", }'

-- 9999-12-31T23:59:59.997Z in epoch seconds.
local FAR_FUTURE = 253402300799.997

local NOW = 1700000000

local function parse(status, content_type, body)
  return protocol.parse_token_response(status, content_type, body, NOW)
end

local function all_bytes()
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  return table.concat(t)
end

describe("core.protocol", function()
  describe("percent-encoding", function()
    it("keeps only the RFC 3986 unreserved characters", function()
      assert.equal("AZaz09-._~", protocol.pct_encode("AZaz09-._~"))
      assert.equal("%20%2B%25%2F%3F%26%3D%23", protocol.pct_encode(" +%/?&=#"))
      assert.equal("%C3%A9", protocol.pct_encode("\195\169"))
    end)

    it("writes a space as '+' in form mode and as %20 otherwise", function()
      assert.equal("a+b", protocol.pct_encode("a b", true))
      assert.equal("a%20b", protocol.pct_encode("a b", false))
      assert.equal("a%20b", protocol.pct_encode("a b"))
    end)

    it("round-trips every byte 0x00-0xFF in both modes", function()
      local bytes = all_bytes()
      for _, form in ipairs { true, false } do
        local encoded = protocol.pct_encode(bytes, form)
        assert.is_nil(encoded:find("[^%w%-%._~%%+]"))
        assert.equal(bytes, protocol.pct_decode(encoded, form))
      end
    end)

    it("encodes each escaped byte as %XX with upper-case hex", function()
      local encoded = protocol.pct_encode(all_bytes())
      assert.equal(66 + (256 - 66) * 3, #encoded)
      assert.truthy(encoded:find("%00%01", 1, true))
      assert.truthy(encoded:find("%FF", 1, true))
      assert.is_nil(encoded:find("%%%x?[a-f]"))
    end)

    it("keeps '+' and '%' of a secret intact through a form round trip", function()
      local secret = "p+ss%word %41+%2B"
      local encoded = protocol.pct_encode(secret, true)
      assert.equal("p%2Bss%25word+%2541%2B%252B", encoded)
      assert.equal(secret, protocol.pct_decode(encoded, true))
    end)

    it("decodes leniently: a bad escape stays literal", function()
      assert.equal("100%", protocol.pct_decode("100%"))
      assert.equal("%4", protocol.pct_decode("%4"))
      assert.equal("%zz!", protocol.pct_decode("%zz%21"))
      assert.equal("a+b", protocol.pct_decode("a+b"))
      assert.equal("a b", protocol.pct_decode("a+b", true))
      assert.equal("\0", protocol.pct_decode("%00"))
      assert.equal("Az", protocol.pct_decode("%41%7a"))
      assert.equal("", protocol.pct_decode(""))
    end)

    it("raises on wrong argument types", function()
      assert.has_error(function() protocol.pct_encode(nil) end)
      assert.has_error(function() protocol.pct_encode({}) end)
      assert.has_error(function() protocol.pct_encode("x", "yes") end)
      assert.has_error(function() protocol.pct_decode(true) end)
    end)
  end)

  describe("form bodies", function()
    it("encodes an array of pairs in order", function()
      assert.equal("grant_type=client_credentials&scope=hs-code-classification+avatax_api",
        protocol.form_encode { { "grant_type", "client_credentials" },
                               { "scope", "hs-code-classification avatax_api" } })
    end)

    it("encodes a table with its keys sorted", function()
      assert.equal("a=2&b=x%26y%3Dz&c=3", protocol.form_encode { c = 3, a = "2", b = "x&y=z" })
      assert.equal("", protocol.form_encode {})
    end)

    it("escapes '+', '%' and '&' in secrets", function()
      local body = protocol.form_encode { { "client_id", "2000000001" },
                                          { "client_secret", "a+b%c&d=e f" } }
      assert.equal("client_id=2000000001&client_secret=a%2Bb%25c%26d%3De+f", body)
      assert.same({ client_id = "2000000001", client_secret = "a+b%c&d=e f" },
        protocol.form_decode(body))
    end)

    it("round-trips every byte through form_encode and form_decode", function()
      local bytes = all_bytes()
      assert.same({ [bytes] = bytes }, protocol.form_decode(protocol.form_encode { [bytes] = bytes }))
    end)

    it("decodes keys without '=' as empty, skips empty pairs, keeps the last duplicate", function()
      assert.same({ a = "1", flag = "", b = "3" }, protocol.form_decode("a=0&&flag&a=1&b=3&"))
      assert.same({}, protocol.form_decode(""))
      assert.same({ ["a b"] = "c=d" }, protocol.form_decode("a+b=c=d"))
    end)

    it("raises on keys or values of the wrong type", function()
      assert.has_error(function() protocol.form_encode("a=1") end)
      assert.has_error(function() protocol.form_encode { { "a", {} } } end)
      assert.has_error(function() protocol.form_encode { { 1, "x" } } end)
      assert.has_error(function() protocol.form_encode { { "a", "1" }, "b" } end)
      assert.has_error(function() protocol.form_encode { [1.5] = "x" } end)
      assert.has_error(function() protocol.form_encode { a = true } end)
      assert.has_error(function() protocol.form_decode(nil) end)
    end)
  end)

  describe("JSON", function()
    local null = protocol.null

    it("json_body decodes as core.request does: nesting to 1000 (json_decode stops at 64), no trailing comma", function()
      local deep = ("["):rep(100) .. ("]"):rep(100)
      assert.is_nil(protocol.json_decode(deep))
      assert.is_table(protocol.json_body(deep))
      assert.is_nil(protocol.json_body(("["):rep(1001) .. ("]"):rep(1001)))
      local v, why = protocol.json_body("[1,]")
      assert.is_nil(v)
      assert.equal("invalid number at byte 3", why)
      assert.equal(protocol.null, protocol.json_body('{"a":null}').a)
      assert.has_error(function() protocol.json_body(nil) end)
    end)

    it("decodes nested objects and arrays with every scalar", function()
      local v = assert(protocol.json_decode(
        ' {"a":[1,-2.5,3e2,0,true,false,null],"b":{"c":{"d":[[]]}},"e":{}} '))
      assert.same({ 1, -2.5, 300, 0, true, false, null }, v.a)
      assert.same({ c = { d = { {} } } }, v.b)
      assert.same({}, v.e)
    end)

    it("keeps null distinguishable (and equal to cjson.null)", function()
      local v = protocol.json_decode('[null]')
      assert.equal("userdata", type(v[1]))
      assert.equal(null, v[1])
      local ok, cjson = pcall(require, "cjson")
      if ok then assert.equal(cjson.null, v[1]) end
    end)

    it("decodes every escape, \\u escapes and surrogate pairs to UTF-8", function()
      local v = assert(protocol.json_decode([["\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC\ud83d\ude00\u0000x"]]))
      assert.equal('"\\/\b\f\n\r\t' .. "A\195\169\226\130\172\240\159\152\128\0x", v)
    end)

    it("passes raw UTF-8 through and keeps NULs in keys", function()
      local v = assert(protocol.json_decode('{"k\\u0000ey":"caf\195\169"}'))
      assert.equal("caf\195\169", v["k\0ey"])
    end)

    it("decodes numbers exactly as strtod does", function()
      assert.equal(0.1, protocol.json_decode("0.1"))
      assert.equal(-0.5e-3, protocol.json_decode("-0.5E-3"))
      assert.equal(123456789012, protocol.json_decode("123456789012"))
      assert.equal(1, protocol.json_decode("1" .. ("0"):rep(100) .. "e-100"))
    end)

    it("refuses malformed input with a reason that quotes nothing", function()
      local bad = {
        "", "   ", "{", "[1,2", '{"a":1', '{"a"', '{"a":}', '"abc', "tru", "nul", "01", "1.", ".5",
        "-", "1e", "+1", "[1,]", '{"a":1,}', "[,]", "[1,,2]", "{,}", "[1 2]", '{"a" 1}', "{a:1}",
        "'x'", '"\\x"', '"\\u12G4"', '"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"', '"a\nb"',
        "[1] x", "NaN", "Infinity", "<html><body>500</body></html>", "\239\187\191{}",
      }
      for _, s in ipairs(bad) do
        local v, err = protocol.json_decode(s)
        assert.is_nil(v, s)
        assert.is_string(err)
        assert.truthy(err:find("at byte %d+$"), err)
      end
      local _, err = protocol.json_decode('{"secret-token-value":')
      assert.is_nil(err:find("secret", 1, true))
    end)

    it("accepts trailing commas only when asked", function()
      assert.is_nil(protocol.json_decode("[1,2,]"))
      assert.same({ 1, 2 }, protocol.json_decode("[1,2,]", true))
      assert.same({ a = 1 }, protocol.json_decode('{"a":1 , \n}', true))
      assert.is_nil(protocol.json_decode("[,]", true))
      assert.is_nil(protocol.json_decode("[1,,]", true))
      assert.is_nil(protocol.json_decode("{,}", true))
    end)

    it("fails cleanly on 10000 levels of nesting", function()
      for _, s in ipairs { ("["):rep(10000), ("["):rep(10000) .. ("]"):rep(10000),
                           ('{"a":'):rep(10000) .. "1" .. ("}"):rep(10000) } do
        local v, err = protocol.json_decode(s)
        assert.is_nil(v)
        assert.truthy(err:find("nesting too deep", 1, true))
      end
      -- 64 levels are the limit; 63 are fine.
      assert.is_table(protocol.json_decode(("["):rep(64) .. ("]"):rep(64)))
      assert.is_nil(protocol.json_decode(("["):rep(65) .. ("]"):rep(65)))
    end)

    it("raises on wrong argument types", function()
      assert.has_error(function() protocol.json_decode(nil) end)
      assert.has_error(function() protocol.json_decode("[]", 1) end)
    end)
  end)

  describe("datetimes", function()
    local dt = protocol.parse_datetime

    it("parses with and without a fraction, 'T' or a space", function()
      assert.equal(0, dt("1970-01-01T00:00:00"))
      assert.equal(1700000000, dt("2023-11-14T22:13:20Z"))
      assert.equal(1700000000, dt("2023-11-14 22:13:20"))
      assert.equal(1700000000.25, dt("2023-11-14t22:13:20.25z"))
      assert.equal(951782400, dt("2000-02-29T00:00:00Z"))
      assert.equal(-86400, dt("1969-12-31T00:00:00Z"))
    end)

    it("applies zone offsets", function()
      assert.equal(1700000000, dt("2023-11-15T00:13:20+02:00"))
      assert.equal(1700000000, dt("2023-11-14T17:43:20-04:30"))
      assert.equal(1700000000, dt("2023-11-14T22:13:20+00:00"))
    end)

    it("parses the 2012 endpoint's 9999-12-31T23:59:59.9970000", function()
      assert.near(FAR_FUTURE, dt("9999-12-31T23:59:59.9970000"), 1e-3)
      assert.near(FAR_FUTURE, dt("9999-12-31T23:59:59.997Z"), 1e-3)
    end)

    it("refuses malformed or impossible dates", function()
      for _, s in ipairs {
        "", "2023", "2023-11-14", "2023-13-01T00:00:00", "2023-00-10T00:00:00",
        "2023-02-29T00:00:00", "1900-02-29T00:00:00", "2023-04-31T00:00:00", "2023-01-00T00:00:00",
        "2023-01-01T24:00:00", "2023-01-01T00:60:00", "2023-01-01T00:00:61",
        "2023-01-01T00:00:00.", "2023-01-01T00:00:00+2:00", "2023-01-01T00:00:00+24:00",
        "2023-01-01T00:00:00Zjunk", "2023-1-01T00:00:00", "23-01-01T00:00:00", "2023/01/01T00:00:00",
        " 2023-01-01T00:00:00", "2023-01-01T00:00", "3600",
      } do
        assert.is_nil(dt(s), s)
      end
    end)
  end)

  describe("token responses", function()
    it("parses the 2012 sample body with its trailing comma", function()
      for _, ct in ipairs { "application/json; charset=utf-8", "text/html", false } do
        local r = parse(200, ct or nil, SAMPLE_2012)
        assert.equal("ok", r.result)
        assert.equal("a136c4debbc84be7911203cbbef8b629", r.access_token)
        assert.equal("71b5389c06b54f91b40135f8e0f39dd6", r.refresh_token)
        assert.equal("avalara", r.token_type)
        assert.equal("CompanyUser", r.scope)
        assert.near(FAR_FUTURE, r.expires_at, 1e-3)
        assert.is_nil(r.reason)
      end
    end)

    it("parses an Identity response with a numeric expires_in", function()
      local r = parse(200, "application/json",
        '{"access_token":"eyJhbGciOi.x.y","expires_in":3600,"token_type":"Bearer","scope":"hs-code-classification"}')
      assert.equal("ok", r.result)
      assert.equal("eyJhbGciOi.x.y", r.access_token)
      assert.is_nil(r.refresh_token)
      assert.equal("Bearer", r.token_type)
      assert.equal("hs-code-classification", r.scope)
      assert.equal(NOW + 3600, r.expires_at)
    end)

    it("reads a numeric-string expires_in as seconds from now", function()
      assert.equal(NOW + 3600, parse(200, "application/json", '{"access_token":"t","expires_in":"3600"}').expires_at)
      assert.equal(NOW + 1.5, parse(200, "application/json", '{"access_token":"t","expires_in":" 1.5 "}').expires_at)
      assert.equal(NOW + 60, parse(200, nil, "access_token=t&expires_in=60").expires_at)
    end)

    it("has no expiry when expires_in is missing, null or empty", function()
      for _, body in ipairs { '{"access_token":"t"}', '{"access_token":"t","expires_in":null}',
                              '{"access_token":"t","expires_in":""}', "access_token=t&expires_in=" } do
        local r = parse(200, nil, body)
        assert.equal("ok", r.result)
        assert.is_nil(r.expires_at)
      end
    end)

    it("refuses an unreadable expires_in", function()
      for _, v in ipairs { '"soon"', "-5", "true", "[]", '"-5"', '"2023-02-30T00:00:00"', "1e999" } do
        local r = parse(200, "application/json", '{"access_token":"secret-tok","expires_in":' .. v .. "}")
        assert.equal("parse", r.result, v)
        assert.equal("token response has an unreadable expires_in", r.reason)
        assert.is_nil(r.access_token)
      end
    end)

    it("parses a form-urlencoded success body", function()
      local r = parse(200, "application/x-www-form-urlencoded",
        "access_token=abc%2Bdef&token_type=bearer&refresh_token=r1&scope=a+b&expires_in=10")
      assert.equal("ok", r.result)
      assert.equal("abc+def", r.access_token)
      assert.equal("r1", r.refresh_token)
      assert.equal("a b", r.scope)
      assert.equal(NOW + 10, r.expires_at)
    end)

    describe("the eight 2012 error bodies of seed 003", function()
      -- The bodies byte for byte, one per line.
      -- luacheck: push no max line length
      local cases = {
        { "error=invalid_request&error_description=Authorize+request+with+invalid+client_id%3a++&state=",
          "invalid_request", "Authorize request with invalid client_id:  " },
        { "error=invalid_request&error_description=Authorize+request+with+invalid+client_secret%3a++&state=",
          "invalid_request", "Authorize request with invalid client_secret:  " },
        { "error=unsupported_grant_type&error_description=This+access+grant+type+is+not+supported+by+this+server.&state=",
          "unsupported_grant_type", "This access grant type is not supported by this server." },
        { "error=invalid_grant&error_description=Value+cannot+be+empty.%0d%0aParameter+name%3a+accessGrantId&state=",
          "invalid_grant", "Value cannot be empty.\r\nParameter name: accessGrantId" },
        { "error=invalid_token&error_description=value+argument+cannot+be+empty.%0d%0aParameter+name%3a+RefreshToken&state=",
          "invalid_token", "value argument cannot be empty.\r\nParameter name: RefreshToken" },
        { "error=invalid_token&error_description=access_denied&state=", "invalid_token", "access_denied" },
        { "error=invalid_grant&error_description=access_denied&state=", "invalid_grant", "access_denied" },
        { "error=invalid_token&error_description=token+revoked&state=", "invalid_token", "token revoked" },
      }
      -- luacheck: pop
      for i, case in ipairs(cases) do
        it(("#%d %s: %s"):format(i, case[2], case[3]:gsub("\r\n", " ")), function()
          -- The same answer whatever the status and whatever the content type says.
          for _, status in ipairs { 400, 401, 200 } do
            for _, ct in ipairs { "application/x-www-form-urlencoded", "text/html; charset=utf-8",
                                  "application/json", false } do
              local r = parse(status, ct or nil, case[1])
              assert.equal("oauth", r.result)
              assert.equal(case[2], r.error)
              assert.equal(case[3], r.error_description)
              assert.is_nil(r.access_token)
              assert.is_nil(r.error_uri)
            end
          end
        end)
      end
    end)

    it("maps a JSON RFC 6749 error with error_uri", function()
      local r = parse(401, "application/json",
        '{"error":"invalid_client","error_description":"bad \\"client\\"","error_uri":"https://e.example/x"}')
      assert.equal("oauth", r.result)
      assert.equal("invalid_client", r.error)
      assert.equal('bad "client"', r.error_description)
      assert.equal("https://e.example/x", r.error_uri)
    end)

    it("treats an error member in a 200 as an error", function()
      local r = parse(200, "application/json", '{"access_token":"secret-tok","error":"invalid_scope"}')
      assert.equal("oauth", r.result)
      assert.equal("invalid_scope", r.error)
      assert.is_nil(r.access_token)
      r = parse(200, "application/json", '{"access_token":"secret-tok","error":42}')
      assert.equal("parse", r.result)
      assert.is_nil(r.access_token)
    end)

    it("maps an AvaTax-shaped error object to an OAuth-style error", function()
      local r = parse(401, "application/json",
        '{"error":{"code":"AuthenticationIncomplete","message":"Authentication incomplete."}}')
      assert.equal("oauth", r.result)
      assert.equal("AuthenticationIncomplete", r.error)
      assert.equal("Authentication incomplete.", r.error_description)
    end)

    it("gives an http result for a non-2xx body without an error member", function()
      for _, case in ipairs {
        { 500, "text/html", "<html><body>Internal Server Error</body></html>" },
        { 502, nil, "" },
        { 503, "application/json", '{"message":"down"}' },
        { 404, "application/json", "{trunc" },
        { 400, "application/json", '{"error":""}' },
      } do
        local r = parse(case[1], case[2], case[3])
        assert.equal("http", r.result)
        assert.equal("token endpoint returned HTTP " .. case[1], r.reason)
        assert.is_nil(r.error)
      end
    end)

    it("gives a parse result for a 2xx body it cannot read, with a readable reason", function()
      local cases = {
        { "text/html", "<html>secret-tok</html>", "token response is not JSON or form data" },
        { nil, "", "token response body is empty" },
        { "application/json", "  \r\n", "token response body is empty" },
        { "application/json", '{"access_token":"secret-tok"', "^token response is not valid JSON: " },
        { nil, '{"access_token":"secret-tok",,}', "^token response is not valid JSON: " },
        { "application/json", '["secret-tok"]', "token response is not valid JSON: not an object" },
        { "application/json", '{"token_type":"Bearer"}', "token response has no access_token" },
        { nil, "token_type=bearer", "token response has no access_token" },
        { nil, '{"access_token":""}', "token response has no access_token" },
        { nil, '{"access_token":12}', "token response has a non-string access_token" },
        { nil, '{"access_token":"a\\r\\nX-Evil: 1"}', "token response has an access_token with invalid characters" },
        { nil, '{"access_token":"a b"}', "token response has an access_token with invalid characters" },
        { nil, '{"access_token":"a","refresh_token":"r\\u0000x"}', "token response has an unreadable refresh_token" },
        { nil, ('['):rep(10000), "^token response is not valid JSON: nesting too deep" },
      }
      for _, case in ipairs(cases) do
        local r = parse(200, case[1], case[2])
        assert.equal("parse", r.result, case[2])
        assert.truthy(r.reason:find(case[3], 1, case[3]:sub(1, 1) ~= "^"), r.reason)
        assert.is_nil(r.reason:find("secret", 1, true))
        assert.is_nil(r.access_token)
      end
    end)

    it("reads a body whose content type lies", function()
      assert.equal("ok", parse(200, "application/x-www-form-urlencoded", '{"access_token":"t"}').result)
      assert.equal("ok", parse(200, "application/json", "access_token=t").result)
      assert.equal("ok", parse(200, "application/vnd.api+json", '{"access_token":"t"}').result)
    end)

    it("keeps the last of duplicate members", function()
      assert.equal("second", parse(200, nil, '{"access_token":"first","access_token":"second"}').access_token)
      assert.equal("second", parse(200, nil, "access_token=first&access_token=second").access_token)
    end)

    it("raises on wrong argument types", function()
      assert.has_error(function() protocol.parse_token_response("two hundred", nil, "", NOW) end)
      assert.has_error(function() protocol.parse_token_response(200, {}, "", NOW) end)
      assert.has_error(function() protocol.parse_token_response(200, nil, nil, NOW) end)
      assert.has_error(function() protocol.parse_token_response(200, nil, "") end)
    end)
  end)

  describe("AvaTax error bodies", function()
    it("reads code, message, target and the first detail's description", function()
      local e = protocol.parse_api_error([[{"error":{"code":"EntityNotFoundError","message":"Classification not found.",
        "target":"HttpRequest","details":[{"code":"EntityNotFoundError","number":4,
        "message":"Classification not found.","description":"The classification with ID 7 was not found.",
        "faultCode":"Client","severity":"Error"}]}}]])
      assert.same({ code = "EntityNotFoundError", message = "Classification not found.", target = "HttpRequest",
                    detail_description = "The classification with ID 7 was not found.", number = 4 }, e)
    end)

    it("falls back to the detail's message and copes with missing parts", function()
      local e = protocol.parse_api_error('{"error":{"code":"RateLimitExceeded","details":[{"message":"Slow down"}]}}')
      assert.same({ code = "RateLimitExceeded", detail_description = "Slow down" }, e)
      e = protocol.parse_api_error('{"error":{"message":"Something","details":[]}}')
      assert.same({ message = "Something" }, e)
      -- a number that is not a small positive integer is not an ErrorCodeId
      for _, n in ipairs { '"4"', "4.5", "-1", "1e300", "null" } do
        e = protocol.parse_api_error('{"error":{"code":"X","details":[{"number":' .. n .. '}]}}')
        assert.is_nil(e.number, n)
      end
    end)

    it("returns nil for anything else", function()
      for _, body in ipairs { "", "<html></html>", '{"error":"invalid_client"}', '{"error":{}}',
                              '{"message":"x"}', '[{"error":{"code":"x"}}]', '{"error":{"code":"x"', "null" } do
        assert.is_nil(protocol.parse_api_error(body), body)
      end
      assert.has_error(function() protocol.parse_api_error(nil) end)
    end)
  end)
end)
