-- Issue 20, finding 7 (repro straddle.lua + straddle_server.py): a secret
-- echoed by a server across the limit of an error field (code and
-- request_id 127 bytes, error_uri 255, error_description and message 511,
-- body 4096) kept the part before the cut, because the field was cut first
-- and redacted afterwards. Every field is now redacted whole, then cut.
-- A real server (spec/support/straddle_server.lua) echoes the credential it
-- was sent after N bytes of padding, in every encoding the redactor knows;
-- the checks look for any prefix of any encoding of the secret.
local core = require "avalara.core"
local hostile = require "spec.support.hostile"

-- Secrets that start with three characters no message holds, and carry
-- characters each encoding changes ('/', '+', '=', '&', '"', '<').
local SECRET = 'Q7zS3cret/Key+42=&"q"<y>'
local TOKEN = 'Q7zT0k/en+with=sym&bols<"q">'

local LIMITS = { code = 127, id = 127, uri = 255, desc = 511, message = 511, bearer = 511, detail = 511, body = 4096 }

local function pct(s, space)
  return (s:gsub("[^%w%-%._~]", function(c)
    if c == " " and space then return space end
    return ("%%%02X"):format(c:byte())
  end))
end

local ENCODINGS = { "raw", "form", "pct", "lower", "json", "html" }

local function forms(secret)
  local json = secret:gsub('[\\"]', "\\%0")
  return {
    raw = secret, form = pct(secret, "+"), pct = pct(secret), lower = (pct(secret, "+"):gsub("%%%x%x", string.lower)),
    json = json:gsub("/", "\\/"), json_plain = json,
    html = (secret:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" })),
  }
end

-- Every text the caller can see of err, with its name. A JSON error
-- document escapes an echo that is JSON- or HTML-escaped already a second
-- time ("\/" in "&quot;"): no redactor knows every encoding of an
-- encoding, so such a body is left out (skip_body); its fields, decoded
-- once, are checked.
local function texts(err, skip_body)
  local t = { ["tostring(err)"] = tostring(err) }
  for _, k in ipairs { "message", "code", "error_description", "error_uri", "request_id", "body" } do
    if type(err[k]) == "string" and not (k == "body" and skip_body) then t[k] = err[k] end
  end
  return t
end

-- No text holds a prefix of any form of the secret: every form starts
-- with the same three bytes ("Q7z", which no message holds), so a part of
-- 3 bytes or more shows as those; a shorter one can only be at the end.
local function assert_no_part(label, err, secret, skip_body)
  assert.is_table(err, label)
  local head = secret:sub(1, 3)
  for fname, form in pairs(forms(secret)) do
    assert(form:sub(1, 3) == head, fname)
  end
  for tname, text in pairs(texts(err, skip_body)) do
    local at = text:find(head, 1, true)
    assert(not at, ("%s: %s keeps part of the secret (from byte %s)"):format(label, tname, tostring(at)))
    assert(text:sub(-2) ~= head:sub(1, 2) and text:sub(-1) ~= head:sub(1, 1),
      ("%s: %s ends with part of the secret"):format(label, tname))
  end
end

-- Paddings that put every byte boundary of an echo of `len` bytes on the
-- limit (the field may carry a few bytes before the echo: `before`).
local function straddles(limit, len, before)
  local pads = {}
  for pad = limit - before - len, limit - before do
    if pad >= 0 then pads[#pads + 1] = pad end
  end
  return pads
end

describe("redaction before truncation (issue 20, finding 7)", function()
  local h
  setup(function() h = hostile.spawn("spec/support/straddle_server.lua") end)
  teardown(function() if h then h:stop() end end)

  local function token_error(field, enc, pad)
    local t, err = core.client_credentials { token_url = ("%s/token/%s/%s/%d"):format(h.url, field, enc, pad),
      client_id = "id", client_secret = SECRET, auth_method = "post" }
    assert.is_nil(t)
    return err
  end

  local function api_error(field, enc, pad)
    local status, err = core.request { url = ("%s/api/%s/%s/%d"):format(h.url, field, enc, pad), token = TOKEN }
    assert.is_nil(status)
    return err
  end

  it("the repro: a client secret echoed across error_description's limit keeps no byte", function()
    for _, pad in ipairs(straddles(511, #SECRET, 0)) do
      local err = token_error("desc", "raw", pad)
      assert.equal("invalid_client", err.code)
      assert.truthy(#err.error_description <= 511 and err.error_description:find("^xxx"))
      assert_no_part("desc/raw/" .. pad, err, SECRET)
    end
  end)

  it("a client secret in every encoding, across the limit of every field of a token error", function()
    local seen = {}
    for _, field in ipairs { "desc", "uri", "code", "id", "body" } do
      for _, enc in ipairs(ENCODINGS) do
        local len = #forms(SECRET)[enc]
        local limits = { LIMITS[field] }
        -- the message is the description made readable, cut at 359 bytes
        if field == "desc" then limits[2] = 359 end
        for _, limit in ipairs(limits) do
          for _, pad in ipairs(straddles(limit, len, field == "body" and 6 or 0)) do
            local err = token_error(field, enc, pad)
            local label = ("token %s/%s/%d"):format(field, enc, pad)
            assert_no_part(label, err, SECRET, (enc == "json" or enc == "html") and field ~= "body")
            seen[field] = true
          end
        end
      end
    end
    assert.same({ desc = true, uri = true, code = true, id = true, body = true }, seen)
  end)

  it("a bearer token in every encoding, across the limit of every field of an API error", function()
    for _, field in ipairs { "message", "detail", "bearer", "code", "id", "body" } do
      for _, enc in ipairs(ENCODINGS) do
        local len = #forms(TOKEN)[enc]
        -- "bad token (" comes before the detail in the message
        local before = field == "detail" and #"bad token (" or field == "body" and 6 or 0
        for _, pad in ipairs(straddles(LIMITS[field], len, before)) do
          local err = api_error(field, enc, pad)
          assert.equal(field == "body" and 502 or 401, err.status)
          assert_no_part(("api %s/%s/%d"):format(field, enc, pad), err, TOKEN, (enc == "json" or enc == "html") and field ~= "body")
        end
      end
    end
  end)

  it("a transport function's message and code across their limits", function()
    for _, limit in ipairs { 127, 511 } do
      for _, pad in ipairs(straddles(limit, #SECRET, 0)) do
        local t, err = core.client_credentials { token_url = "http://id.invalid/connect/token", client_id = "id",
          client_secret = SECRET, transport = function(req)
            local echo = ("x"):rep(pad) .. req.body:match("client_secret=([^&]*)")
            return nil, { kind = "transport", message = echo, code = echo }
          end }
        assert.is_nil(t)
        assert.equal("transport", err.kind)
        assert_no_part("transport function/" .. pad, err, SECRET)
      end
    end
  end)
end)
