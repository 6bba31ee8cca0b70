--- The body-signature scheme of webhook deliveries (`avalara.webhook`'s
-- `scheme = "body"`): the only signing scheme Avalara publishes, the
-- E-Invoicing one (docs/api-contracts.md section 10; Avalara's Python SDK,
-- `docs/EInvoicing/V1/WebhookInvocation.md`, `EventMessage.md`,
-- `SignatureValueSignature.md`, `SubscriptionRegistration.md`).
--
-- The subscriber chooses the HMAC key and algorithm when it registers
-- (`signature = {type = "hmac", key, algorithm}`); each delivery is a
-- `WebhookInvocation` `{id, retry_count, retry_max, invocation_timestamp,
-- retry_timestamp, items = {EventMessage...}}`, and each `EventMessage`
-- `{message, signature = {type, algorithm, value}, tenant_id, correlation_id,
-- system_code, event_name, event_version, receipt_timestamp}` carries its own
-- signature in the body.
--
-- What Avalara does not publish, and what this module chose (written in
-- docs/items.md, "Webhook signing schemes"):
--
-- - the signed bytes: "Signature of the message" -- the HMAC covers the
--   `message` value's bytes exactly as they stand in the body (from its
--   `{` to its `}`), nothing else; the event handed on is decoded from those
--   very bytes, so what is checked is what is used;
-- - the encoding of `value`: hex (either case) or base64 (standard or
--   url-safe, padded or not) of the MAC are both taken; the emulator sends
--   lowercase hex;
-- - algorithms: the published names `sha256` and `sha512` (HMAC-SHA256 and
--   HMAC-SHA512, `core.hmac_sha256` / `core.hmac_sha512`); `sha384`, also in
--   the registration model's enum, and anything else are refused by name;
--   `type = "none"` (an unsigned message) is refused;
-- - replays: none of the envelope's timestamps is signed, so a window on
--   them would stop nothing. The signed message is an `HSCodeAssigned`
--   event: its `id` goes through the receiver's seen-set, and its
--   `createdDate` must be at most `max_age` seconds old (and not more than
--   `tolerance` seconds ahead); the seen-set's `ttl` must cover `max_age`.
-- @module avalara.webhook.body
local core = require "avalara.core"
local cjson = require "cjson.safe"
local same = require("avalara.webhook.header").same

local M = {}

--- The algorithms checked, by their published names, and the MAC of each (hex).
M.ALGORITHMS = { sha256 = core.hmac_sha256, sha512 = core.hmac_sha512 }

--- How old a message's signed `createdDate` may be, in seconds (a seen-set's default `ttl`).
M.MAX_AGE = 86400

--- The `signature` of a message under `key`: `{type = "hmac", algorithm, value = hex MAC of message}`.
-- @string key the subscriber's key
-- @string message the `message` value's JSON text, exactly as it goes into the body
-- @string[opt="sha256"] algorithm `"sha256"` or `"sha512"`
-- @treturn table
function M.sign(key, message, algorithm)
  algorithm = algorithm or "sha256"
  if type(key) ~= "string" then error("avalara.webhook.sign_message: 'key' must be a string", 2) end
  if type(message) ~= "string" then error("avalara.webhook.sign_message: 'message' must be a string", 2) end
  local mac = M.ALGORITHMS[algorithm]
  if not mac then
    error("avalara.webhook.sign_message: 'algorithm' must be \"sha256\" or \"sha512\" (got " .. tostring(algorithm)
      .. ")", 2)
  end
  return { type = "hmac", algorithm = algorithm, value = mac(key, message) }
end

-- ------------------------------------------------------------ raw spans

-- The index just past the JSON string that opens at s[i] ('"').
local function string_end(s, i)
  local j = i + 1
  while true do
    local k = s:find('[\\"]', j)
    if not k then return nil end
    if s:byte(k) == 34 then return k + 1 end
    j = k + 2
  end
end

local function skip_ws(s, i)
  return s:find("[^ \t\r\n]", i) or #s + 1
end

-- The index just past the JSON value that starts at s[i] (s is valid JSON:
-- cjson decoded it first).
local function value_end(s, i)
  local c = s:sub(i, i)
  if c == '"' then return string_end(s, i) end
  if c ~= "{" and c ~= "[" then
    return (s:find("[%s,%]}]", i) or #s + 1)
  end
  local depth, j = 0, i
  while true do
    local k = s:find('["{}%[%]]', j)
    if not k then return nil end
    local b = s:sub(k, k)
    if b == '"' then
      j = string_end(s, k)
      if not j then return nil end
    else
      depth = depth + ((b == "{" or b == "[") and 1 or -1)
      if depth == 0 then return k + 1 end
      j = k + 1
    end
  end
end

-- Calls fn(key, first, past) for each member of the object at s[i]; returns
-- the index past it, or nil, why (a key given twice among `unique`).
local function members(s, i, unique, fn)
  local seen = {}
  i = skip_ws(s, i + 1)
  if s:sub(i, i) == "}" then return i + 1 end
  while true do
    local e = string_end(s, i)
    if not e then return nil, "truncated" end
    local key = cjson.decode(s:sub(i, e - 1))
    i = skip_ws(s, skip_ws(s, e) + 1) -- past ':'
    local past = value_end(s, i)
    if not past then return nil, "truncated" end
    if unique[key] then
      if seen[key] then return nil, "'" .. key .. "' is given twice" end
      seen[key] = true
    end
    fn(key, i, past)
    i = skip_ws(s, past)
    local c = s:sub(i, i)
    if c == "}" then return i + 1 end
    i = skip_ws(s, i + 1) -- past ','
  end
end

-- The raw text of items[n].message for each n, or nil, why.
local function message_texts(body)
  local texts, problem = {}, nil
  local start = skip_ws(body, 1)
  if body:sub(start, start) ~= "{" then return nil, "the body is not a JSON object" end
  local ok, why = members(body, start, { items = true }, function(key, first)
    if key ~= "items" or body:sub(first, first) ~= "[" then return end
    local i = skip_ws(body, first + 1)
    while body:sub(i, i) == "{" do
      local text
      local past, err = members(body, i, { message = true, signature = true }, function(k, a, b)
        if k == "message" then text = body:sub(a, b - 1) end
      end)
      if not past then problem = problem or ("items[" .. (#texts + 1) .. "]: " .. err); return end
      texts[#texts + 1] = text or false
      i = skip_ws(body, past)
      if body:sub(i, i) == "," then i = skip_ws(body, i + 1) end
    end
  end)
  if not ok then return nil, why end
  if problem then return nil, problem end
  return texts
end

-- ------------------------------------------------------------ values

local B64 = {}
do
  local abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  for i = 1, 64 do B64[abc:byte(i)] = i - 1 end
  B64[("-"):byte()] = 62
  B64[("_"):byte()] = 63
end

-- The MAC in `value` as lowercase hex (`n` bytes long), or nil.
local function value_hex(value, n)
  if type(value) ~= "string" then return nil end
  if #value == 2 * n and value:match("^%x+$") then return value:lower() end
  local s = value:gsub("=+$", "")
  if #s ~= math.ceil(n * 4 / 3) then return nil end
  local out, acc, bits = {}, 0, 0
  for i = 1, #s do
    local v = B64[s:byte(i)]
    if not v then return nil end
    acc, bits = acc * 64 + v, bits + 6
    if bits >= 8 then
      bits = bits - 8
      local byte = math.floor(acc / 2 ^ bits)
      out[#out + 1] = string.format("%02x", byte)
      acc = acc - byte * 2 ^ bits
    end
  end
  if #out ~= n then return nil end
  return table.concat(out)
end

local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * (m + (m > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

--- Epoch seconds of an ISO 8601 date-time (`2026-12-06T10:28:52.123Z`, an
-- offset, or none: UTC), or nil.
-- @string s
-- @treturn number|nil
function M.epoch(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  local frac, zone = rest:match("^(%.?%d*)(.*)$")
  if frac == "." then return nil end
  local offset = 0
  if zone ~= "" and zone ~= "Z" and zone ~= "z" then
    local sign, oh, om = zone:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then return nil end
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec + (tonumber(frac) or 0) - offset
end

-- ------------------------------------------------------------ checking

--- Checks one invocation's messages: every one must be signed with
-- `opts.secret` by an accepted algorithm. Shape checks of the events are the
-- caller's.
-- @string body the body exactly as received
-- @tparam table opts `{secret, algorithm = nil | "sha256" | "sha512"}`
-- @return the list of `{text = message bytes, algorithm, index}` and the decoded invocation,
-- or nil, status, message
function M.check(body, opts)
  local doc = cjson.decode(body)
  if type(doc) ~= "table" or doc[1] ~= nil or not body:match("^%s*{") then
    return nil, 400, "the body is not a JSON object (a WebhookInvocation)"
  end
  if type(doc.id) ~= "string" or doc.id == "" then return nil, 400, "the WebhookInvocation has no id" end
  if type(doc.items) ~= "table" or doc.items[1] == nil then
    return nil, 400, "the WebhookInvocation has no items (EventMessage list)"
  end
  local texts, why = message_texts(body)
  if not texts then return nil, 400, "the WebhookInvocation cannot be read: " .. why end
  if #texts ~= #doc.items then return nil, 400, "the WebhookInvocation's items cannot be read" end
  local out = {}
  for n, item in ipairs(doc.items) do
    local where = "items[" .. n .. "]"
    if type(item) ~= "table" or not texts[n] or texts[n]:sub(1, 1) ~= "{" then
      return nil, 400, where .. " has no message object"
    end
    local sig = item.signature
    if type(sig) ~= "table" then return nil, 401, where .. " has no signature" end
    if sig.type ~= "hmac" then
      return nil, 401, where .. "'s signature type is " .. (sig.type == "none" and "\"none\" (an unsigned message)"
        or tostring(sig.type)) .. ", not \"hmac\": refused"
    end
    local mac = type(sig.algorithm) == "string" and M.ALGORITHMS[sig.algorithm]
    if not mac then
      return nil, 401, where .. "'s signature algorithm " .. (type(sig.algorithm) == "string" and
        ("\"" .. sig.algorithm:sub(1, 40) .. "\"") or "is missing and") .. " is not one this receiver checks "
        .. "(sha256, sha512)"
    end
    if opts.algorithm and sig.algorithm ~= opts.algorithm then
      return nil, 401, where .. " is signed with " .. sig.algorithm .. ", and this receiver takes " .. opts.algorithm
        .. " only ('algorithm')"
    end
    local expected = mac(opts.secret, texts[n])
    if not same(value_hex(sig.value, #expected / 2), expected) then
      return nil, 401, where .. "'s signature does not match (another key, or a changed message)"
    end
    out[n] = { text = texts[n], algorithm = sig.algorithm, index = n }
  end
  return out, doc
end

--- Says whether a message's signed `createdDate` is inside the window.
-- @param event the decoded message
-- @number now epoch seconds
-- @tparam table opts `{max_age, tolerance}`
-- @return true, or nil, message
function M.fresh(event, now, opts)
  local at = M.epoch(event.createdDate)
  if not at then return nil, "the message has no createdDate (its signed time): its age cannot be bounded" end
  if now - at > opts.max_age then
    return nil, "the message's createdDate is more than " .. opts.max_age .. " s old (a replay, or a wrong clock)"
  end
  if at - now > opts.tolerance then
    return nil, "the message's createdDate is in the future (a wrong clock)"
  end
  return true
end

return M
