-- The 2012 OAuth service under /oauth/: every error of seed 003 byte for
-- byte, the success body, single-use refresh tokens, generate_token, revoke
-- and the legacy verbatim sample body.
local emu = require "spec.support.emulator"

local CLIENT, SECRET = "demo-partner", "demo-partner-secret"
local CALLBACK = "http://127.0.0.1/callback"

-- Seed 003's error table, HTML entities decoded.
local SEED = {
  client_id = "error=invalid_request&error_description=Authorize+request+with+invalid+client_id%3a++&state=",
  client_secret = "error=invalid_request&error_description=Authorize+request+with+invalid+client_secret%3a++&state=",
  grant_type = "error=unsupported_grant_type&error_description=This+access+grant+type+is+not+supported+by+this+server.&state=",
  no_code = "error=invalid_grant&error_description=Value+cannot+be+empty.%0d%0aParameter+name%3a+accessGrantId&state=",
  no_refresh = "error=invalid_token&error_description=value+argument+cannot+be+empty.%0d%0aParameter+name%3a+RefreshToken&state=",
  bad_refresh = "error=invalid_token&error_description=access_denied&state=",
  bad_code = "error=invalid_grant&error_description=access_denied&state=",
  revoked = "error=invalid_token&error_description=token+revoked&state=",
}

local SAMPLE = '{"token_type":"avalara",\n"access_token":"a136c4debbc84be7911203cbbef8b629",\n'
  .. '"scope":"CompanyUser",\n"refresh_token":"71b5389c06b54f91b40135f8e0f39dd6",\n'
  .. '"expires_in":"9999-12-31T23:59:59.9970000", }'

describe("emulator 2012 OAuth", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function() e:reset() end)

  local function post(path, form)
    return assert(e:request("POST", path, { form = form }))
  end

  local function new_code(state)
    local res = assert(e:request("GET", "/oauth/authorize?" .. emu.form_encode({
      client_id = CLIENT, redirect_uri = CALLBACK, response_type = "code", state = state })))
    assert.equal(302, res.status)
    return res.headers.location:match("[?&]code=(%x+)"), res.headers.location
  end

  local function exchange(code)
    return post("/oauth/access_token", { client_id = CLIENT, client_secret = SECRET,
      grant_type = "authorization_code", code = code, redirect_uri = CALLBACK })
  end

  local function refresh(rt)
    return post("/oauth/access_token", { client_id = CLIENT, client_secret = SECRET,
      grant_type = "refresh_token", refresh_token = rt, redirect_uri = CALLBACK })
  end

  local function assert_seed_error(res, name)
    assert.equal(400, res.status)
    assert.equal("application/x-www-form-urlencoded", res.headers["content-type"])
    assert.equal(SEED[name], res.body)
  end

  describe("authorize", function()
    it("auto-approves and redirects to the redirect URI with code and state", function()
      local code, location = new_code("st 1")
      assert.matches("^%x+$", code)
      assert.equal(CALLBACK .. "?code=" .. code .. "&state=st%201", location)
    end)

    it("refuses an unknown client and an unregistered redirect URI", function()
      local res = assert(e:request("GET", "/oauth/authorize?client_id=nobody&redirect_uri=" .. CALLBACK))
      assert_seed_error(res, "client_id")
      res = assert(e:request("GET", "/oauth/authorize?client_id=" .. CLIENT .. "&redirect_uri=http://x/cb"))
      assert.equal(400, res.status)
      assert.matches("^error=invalid_request&error_description=Authorize%+request%+with%+invalid%+redirect_uri", res.body)
    end)
  end)

  describe("access_token", function()
    it("exchanges a code for the avalara token body", function()
      local res = exchange(new_code())
      assert.equal(200, res.status)
      assert.matches("^application/json", res.headers["content-type"])
      assert.equal("avalara", res.json.token_type)
      assert.equal("CompanyUser", res.json.scope)
      assert.equal("9999-12-31T23:59:59.9970000", res.json.expires_in)
      assert.matches("^%x+$", res.json.access_token)
      assert.matches("^%x+$", res.json.refresh_token)
      assert.matches('^{"token_type":"avalara","access_token":"%x+","scope":"CompanyUser","refresh_token":"%x+",'
        .. '"expires_in":"9999%-12%-31T23:59:59%.9970000"}$', res.body)
    end)

    it("seed: the client_id is not supplied (or unknown)", function()
      assert_seed_error(post("/oauth/access_token", { client_secret = SECRET, grant_type = "authorization_code",
        code = "x" }), "client_id")
      assert_seed_error(post("/oauth/access_token", { client_id = "nobody", client_secret = SECRET,
        grant_type = "authorization_code", code = "x" }), "client_id")
    end)

    it("seed: the client_secret is not consistent with the client_id", function()
      assert_seed_error(post("/oauth/access_token", { client_id = CLIENT, client_secret = "wrong",
        grant_type = "authorization_code", code = "x" }), "client_secret")
      assert_seed_error(post("/oauth/access_token", { client_id = CLIENT, grant_type = "authorization_code",
        code = "x" }), "client_secret")
    end)

    it("seed: the grant_type is not supplied or not recognized", function()
      assert_seed_error(post("/oauth/access_token", { client_id = CLIENT, client_secret = SECRET }), "grant_type")
      assert_seed_error(post("/oauth/access_token", { client_id = CLIENT, client_secret = SECRET,
        grant_type = "client_credentials" }), "grant_type")
    end)

    it("seed: the code parameter is not provided", function()
      assert_seed_error(post("/oauth/access_token", { client_id = CLIENT, client_secret = SECRET,
        grant_type = "authorization_code", redirect_uri = CALLBACK }), "no_code")
    end)

    it("seed: the refresh_token parameter is not provided", function()
      assert_seed_error(post("/oauth/access_token", { client_id = CLIENT, client_secret = SECRET,
        grant_type = "refresh_token" }), "no_refresh")
    end)

    it("seed: the refresh_token supplied is not valid", function()
      assert_seed_error(refresh("0123456789abcdef0123456789abcdef"), "bad_refresh")
    end)

    it("seed: the code supplied is not valid (unknown, used or for another redirect URI)", function()
      assert_seed_error(exchange("0123456789abcdef0123456789abcdef"), "bad_code")
      local code = new_code()
      assert.equal(200, exchange(code).status)
      assert_seed_error(exchange(code), "bad_code")
      local other = post("/oauth/access_token", { client_id = CLIENT, client_secret = SECRET,
        grant_type = "authorization_code", code = new_code(), redirect_uri = "http://127.0.0.1/other" })
      assert_seed_error(other, "bad_code")
    end)

    it("seed: the refresh_token has already been utilized (single use)", function()
      local first = exchange(new_code()).json
      local second = refresh(first.refresh_token)
      assert.equal(200, second.status)
      assert.equal("avalara", second.json.token_type)
      assert.not_equal(first.refresh_token, second.json.refresh_token)
      assert_seed_error(refresh(first.refresh_token), "revoked")
      assert.equal(200, refresh(second.json.refresh_token).status)
    end)
  end)

  describe("generate_token", function()
    it("self-grants by GET and by POST", function()
      local res = assert(e:request("GET", "/oauth/generate_token?client_id=" .. CLIENT .. "&client_secret=" .. SECRET))
      assert.equal(200, res.status)
      assert.equal("avalara", res.json.token_type)
      assert.equal("CompanyUser", res.json.scope)
      local posted = post("/oauth/generate_token", { client_id = CLIENT, client_secret = SECRET })
      assert.equal(200, posted.status)
      assert.not_equal(res.json.access_token, posted.json.access_token)
      assert.equal(200, refresh(posted.json.refresh_token).status)
    end)

    it("refuses bad credentials with the seed's bodies", function()
      assert_seed_error(post("/oauth/generate_token", { client_id = "nobody", client_secret = SECRET }), "client_id")
      assert_seed_error(post("/oauth/generate_token", { client_id = CLIENT, client_secret = "x" }), "client_secret")
    end)

    it("issues tokens the API accepts for the partner's company only", function()
      local tok = post("/oauth/generate_token", { client_id = CLIENT, client_secret = SECRET }).json.access_token
      local auth = { authorization = "Bearer " .. tok }
      local item = emu.classification(1001, "A", "cotton t-shirt")
      local ok = e:request("POST", "/api/v2/companies/1001/classifications/hs", { headers = auth, json = item })
      assert.equal(201, ok.status)
      local other = e:request("POST", "/api/v2/companies/1002/classifications/hs", { headers = auth, json = item })
      assert.equal(403, other.status)
      local avalara_scheme = e:request("GET", "/api/v2/definitions/crossborder/sections",
        { headers = { authorization = "avalara " .. tok } })
      assert.equal(200, avalara_scheme.status)
    end)
  end)

  describe("revoke", function()
    it("revokes the whole authorization: access and refresh tokens", function()
      local pair = exchange(new_code()).json
      local auth = { authorization = "Bearer " .. pair.access_token }
      assert.equal(200, e:request("GET", "/api/v2/definitions/crossborder/sections", { headers = auth }).status)
      local res = post("/oauth/revoke", { client_id = CLIENT, client_secret = SECRET, token = pair.access_token })
      assert.equal(200, res.status)
      assert.equal(401, e:request("GET", "/api/v2/definitions/crossborder/sections", { headers = auth }).status)
      assert_seed_error(refresh(pair.refresh_token), "revoked")
    end)

    it("revokes by refresh token too, and needs the client's credentials", function()
      local pair = exchange(new_code()).json
      assert_seed_error(post("/oauth/revoke", { client_id = CLIENT, client_secret = "x",
        refresh_token = pair.refresh_token }), "client_secret")
      assert.equal(200, refresh(pair.refresh_token).status)
      local pair2 = exchange(new_code()).json
      assert.equal(200, post("/oauth/revoke", { client_id = CLIENT, client_secret = SECRET,
        token = pair2.refresh_token }).status)
      assert_seed_error(refresh(pair2.refresh_token), "revoked")
      assert.equal(401, e:request("GET", "/api/v2/definitions/crossborder/sections",
        { headers = { authorization = "Bearer " .. pair2.access_token } }).status)
    end)
  end)

  describe("legacy_sample_body", function()
    it("answers with the seed's sample verbatim, and its tokens work", function()
      e:configure({ legacy_sample_body = true })
      local res = exchange(new_code())
      assert.equal(200, res.status)
      assert.equal(SAMPLE, res.body)
      local api = e:request("GET", "/api/v2/definitions/crossborder/sections",
        { headers = { authorization = "Bearer a136c4debbc84be7911203cbbef8b629" } })
      assert.equal(200, api.status)
      local again = refresh("71b5389c06b54f91b40135f8e0f39dd6")
      assert.equal(SAMPLE, again.body)
      local gen = post("/oauth/generate_token", { client_id = CLIENT, client_secret = SECRET })
      assert.equal(SAMPLE, gen.body)
    end)

    it("is off by default", function()
      local res = exchange(new_code())
      assert.not_equal(SAMPLE, res.body)
      assert.is_table(res.json)
    end)
  end)
end)
