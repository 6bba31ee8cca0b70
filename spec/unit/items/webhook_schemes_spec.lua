-- avalara.webhook's signing schemes without a server (issue 24, item 6): the
-- choice of `scheme` (a default that warns once), the body scheme's signature
-- check over the message's exact bytes (HMAC-SHA256 and HMAC-SHA512, hex or
-- base64 values, RFC 4231's vector through the scheme), what it refuses and
-- why, its replay window, and the handling of an invocation of several events.
local core = require "avalara.core"
local store = require "avalara.store"
local warning = require "avalara.warning"
local webhook = require "avalara.webhook"
local body_scheme = require "avalara.webhook.body"

local KEY = "subscriber-chosen-key-0123456789"

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", t) .. ".250Z"
end

local function message(id, extra)
  return '{"id":"' .. id .. '","eventType":"HSCodeAssigned","createdDate":"' .. iso(os.time()) .. '",'
    .. '"itemId":5,"itemCode":"A","classifications":[{"productCode":"610910","country":"US","systemCode":"HTS"}]'
    .. (extra or "") .. "}"
end

-- A WebhookInvocation of the messages (JSON texts), each signed as `sign(text)` says.
local function invocation(texts, sign)
  local items = {}
  for i, text in ipairs(texts) do
    local sig = sign and sign(text, i) or webhook.sign_message(KEY, text, "sha256")
    items[i] = '{"message":' .. text .. ',"signature":{"type":"' .. sig.type .. '","algorithm":"' .. sig.algorithm
      .. '","value":"' .. sig.value .. '"},"tenant_id":"1001","event_name":"HSCodeAssigned"}'
  end
  return '{"id":"inv-1","retry_count":3,"invocation_timestamp":"' .. iso(os.time()) .. '","items":['
    .. table.concat(items, ",") .. "]}"
end

local BODY = { scheme = "body", secret = KEY }

local function refused(body, opts, status, pattern)
  local ev, err = webhook.parse(body, {}, opts or BODY)
  assert.is_nil(ev)
  assert.equal(status, err.status)
  assert.truthy(err.message:find(pattern), err.message)
end

describe("avalara.webhook scheme", function()
  it("defaults to the header scheme with one warning per process, and takes no unknown scheme", function()
    local said = {}
    local default = warning.default
    warning.default = function(m) said[#said + 1] = m end
    local ok, err = pcall(function()
      local _, e1 = webhook.parse("{}", {}, { secret = KEY })
      local _, e2 = webhook.parse("{}", {}, { secret = KEY })
      assert.equal(401, e1.status)
      assert.truthy(e2.message:find("x-avalara-timestamp", 1, true))
      -- an explicit scheme, or a verify of one's own, says nothing
      webhook.parse("{}", {}, { scheme = "header", secret = KEY })
    end)
    warning.default = default
    assert(ok, err)
    assert.equal(1, #said)
    assert.truthy(said[1]:find("no 'scheme' given", 1, true))
    assert.truthy(said[1]:find('"header" or "body"', 1, true))
    assert.has_error(function() webhook.parse("{}", {}, { scheme = "einvoice", secret = KEY }) end,
      "avalara.webhook.parse: 'scheme' must be \"header\" or \"body\" (got einvoice)")
    assert.has_error(function() webhook.parse("{}", {}, { scheme = "body", verify = function() end }) end)
    assert.has_error(function() webhook.parse("{}", {}, { scheme = "body", secret = KEY, algorithm = "sha384" }) end)
    assert.has_error(function() webhook.parse("{}", {}, { scheme = "header", secret = KEY, algorithm = "sha256" }) end)
    assert.has_error(function() webhook.parse("{}", {}, { scheme = "body", secret = KEY, max_age = -1 }) end)
  end)
end)

describe("the body scheme's signature check", function()
  it("is HMAC over the message's bytes exactly as sent (RFC 4231 case 2 through the scheme)", function()
    assert.same({ type = "hmac", algorithm = "sha512", value = "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd6"
      .. "10270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737" },
      webhook.sign_message("Jefe", "what do ya want for nothing?", "sha512"))
    assert.equal(core.hmac_sha256(KEY, "{}"), webhook.sign_message(KEY, "{}").value)
    -- whitespace and key order inside the message are part of what is signed
    local text = message("e1"):gsub(",", ", ")
    assert.truthy(webhook.parse(invocation({ text }), {}, BODY))
    refused(invocation({ text }, function(t) return webhook.sign_message(KEY, (t:gsub(", ", ","))) end), BODY, 401,
      "signature does not match")
  end)

  it("reads the message's span through strings with braces, escapes and nesting", function()
    local text = message("e2", ',"note":"a } \\" { ] [ \\\\","deep":{"a":[{"b":"}"}]}')
    local events = assert(webhook.parse(invocation({ text }), {}, BODY))
    assert.equal('a } " { ] [ \\', events[1].note)
    assert.equal("}", events[1].deep.a[1].b)
    -- the envelope may put its members in any order, with whitespace
    local sig = webhook.sign_message(KEY, text, "sha512")
    local body = '{ "items" : [ { "signature" : {"value":"' .. sig.value .. '","algorithm":"sha512","type":"hmac"} ,'
      .. ' "message" : ' .. text .. ' } ] , "id" : "x" }'
    assert.equal("e2", assert(webhook.parse(body, {}, BODY))[1].id)
  end)

  it("takes the MAC as hex in either case or as base64", function()
    local text = message("e3")
    local hex = core.hmac_sha256(KEY, text)
    local raw = hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
    local b64 = require("mime").b64(raw)
    for _, value in ipairs { hex, hex:upper(), b64, (b64:gsub("=", "")), (b64:gsub("%+", "-"):gsub("/", "_")) } do
      local body = invocation({ text }, function() return { type = "hmac", algorithm = "sha256", value = value } end)
      assert.truthy(webhook.parse(body, {}, BODY), value)
    end
    for _, value in ipairs { hex:sub(2), hex .. "0", "", b64:sub(3) } do
      local body = invocation({ text }, function() return { type = "hmac", algorithm = "sha256", value = value } end)
      refused(body, BODY, 401, "signature does not match")
    end
  end)

  it("refuses unsigned, unknown-algorithm and malformed deliveries with a clear error", function()
    local text = message("e4")
    local function signed(sig) return invocation({ text }, function() return sig end) end
    refused(signed { type = "none", algorithm = "sha256", value = "" }, BODY, 401, '"none" %(an unsigned message%)')
    refused(signed { type = "rsa", algorithm = "sha256", value = "x" }, BODY, 401, "type is rsa, not \"hmac\"")
    refused(signed { type = "hmac", algorithm = "sha1", value = core.hmac_sha256(KEY, text) }, BODY, 401,
      'algorithm "sha1" is not one this receiver checks %(sha256, sha512%)')
    refused(signed { type = "hmac", algorithm = "sha384", value = core.hmac_sha256(KEY, text) }, BODY, 401,
      '"sha384" is not one')
    refused('{"id":"i","items":[{"message":' .. text .. '}]}', BODY, 401, "has no signature")
    refused("[]", BODY, 400, "not a JSON object")
    refused('{"items":[]}', BODY, 400, "has no id")
    refused('{"id":"i","items":[]}', BODY, 400, "has no items")
    refused('{"id":"i","items":[{"message":"text"}]}', BODY, 400, "has no message object")
    -- a message given twice (which one is signed, which one used?) is refused
    local sig = webhook.sign_message(KEY, text)
    refused('{"id":"i","items":[{"message":' .. text .. ',"message":' .. text .. ',"signature":{"type":"hmac",'
      .. '"algorithm":"sha256","value":"' .. sig.value .. '"}}]}', BODY, 400, "'message' is given twice")
    -- a signed message that is not an HSCodeAssigned event
    local other = '{"id":"x","eventType":"Other"}'
    refused(invocation({ other }), BODY, 400, "items%[1%]%.message: eventType is not HSCodeAssigned")
    -- no usable key: nothing is accepted
    refused(invocation({ text }), { scheme = "body", secret = "short" }, 500, "shorter than 16 bytes")
    refused(invocation({ text }), { scheme = "body" }, 500, "is not set")
  end)

  it("bounds replays by the signed createdDate: max_age back, tolerance ahead", function()
    local now = os.time()
    local text = message("e5"):gsub('"createdDate":"[^"]*"', '"createdDate":"' .. iso(now - 1000) .. '"')
    local body = invocation({ text })
    assert.truthy(webhook.parse(body, {}, BODY))
    refused(body, { scheme = "body", secret = KEY, max_age = 600 }, 401, "more than 600 s old")
    refused(body, { scheme = "body", secret = KEY, now = function() return now - 2000 end }, 401, "in the future")
    local undated = invocation({ (message("e6"):gsub('"createdDate":"[^"]*",', "")) })
    refused(undated, BODY, 401, "no createdDate")
    assert.equal(0, body_scheme.epoch("1970-01-01T00:00:00Z"))
    assert.equal(951782400.5, body_scheme.epoch("2000-02-29T00:00:00.5Z"))
    assert.equal(951782400 - 3600, body_scheme.epoch("2000-02-29T01:00:00+02:00"))
    assert.equal(1798588800, body_scheme.epoch("2026-12-30T00:00:00"))
    assert.is_nil(body_scheme.epoch("2026-13-01T00:00:00Z"))
    assert.is_nil(body_scheme.epoch("yesterday"))
  end)

  it("needs a seen-set that remembers ids at least max_age", function()
    local seen = webhook.seen.store(store.memory(), { ttl = 3600 })
    local function on_event() end
    assert.has_error(function()
      webhook.handle("{}", {}, { scheme = "body", secret = KEY, seen = seen, on_event = on_event })
    end, "avalara.webhook.handle: the seen ids' 'ttl' is shorter than 'max_age': a replay could be handled twice")
    assert.has_no_error(function()
      webhook.handle("{}", {}, { scheme = "body", secret = KEY, seen = seen, on_event = on_event, max_age = 3600 })
    end)
  end)
end)

describe("the body scheme's handling of an invocation", function()
  it("handles each event once, through the seen-set; a failure is retried for that event only", function()
    local calls, fail = {}, { e8 = true }
    local opts = { scheme = "body", secret = KEY, seen = webhook.seen.store(store.memory()), on_event = function(ev)
      calls[#calls + 1] = ev.id
      if fail[ev.id] then error("database down") end
    end }
    local body = invocation({ message("e7"), message("e8") }, function(t, i)
      return webhook.sign_message(KEY, t, i == 1 and "sha256" or "sha512")
    end)
    local status, answer, handled, log = webhook.handle(body, {}, opts)
    assert.same({ 500, "the event could not be handled", 1 }, { status, answer.error, #handled })
    assert.truthy(log:find("database down", 1, true))
    fail.e8 = nil
    status, answer, handled = webhook.handle(body, {}, opts)
    assert.same({ 200, true, 1, "e8" }, { status, answer.ok, #handled, handled[1].id })
    assert.is_nil(answer.duplicate)
    status, answer = webhook.handle(body, {}, opts)
    assert.same({ 200, true }, { status, answer.duplicate })
    assert.same({ "e7", "e8", "e8" }, calls)
    -- one bad signature among good ones: nothing is handled
    local mixed = invocation({ message("e9"), message("e10") }, function(t, i)
      return webhook.sign_message(i == 1 and KEY or ("x"):rep(32), t)
    end)
    status, answer = webhook.handle(mixed, {}, opts)
    assert.same({ 401, "items[2]'s signature does not match (another key, or a changed message)" },
      { status, answer.error })
    assert.equal(3, #calls)
    local events = assert(webhook.parse(body, {}, BODY))
    assert.same({ "inv-1", 3, 3 }, { events.id, events.attempt, events[2].attempt })
  end)
end)
