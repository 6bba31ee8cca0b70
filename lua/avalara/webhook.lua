--- Receiving the Items flow's webhook deliveries: parse and check an
-- `HSCodeAssigned` event (avalara-api.md section 2.7), in any Lua or in
-- OpenResty.
--
--    -- nginx: location = /avalara/webhook { content_by_lua_block { ... } }
--    require("avalara.webhook").openresty {
--      secret = os.getenv("AVALARA_WEBHOOK_SECRET"),  -- client:webhook_secret(registrationId)
--      on_event = function(event)
--        for _, k in ipairs(event.classifications) do
--          print(event.itemCode, k.country, k.systemCode, k.productCode)
--        end
--      end,
--    }
--
-- Avalara publishes no payload, headers or signature for these deliveries:
-- this module reads what the project's emulator sends (emulator/README.md,
-- "Webhook deliveries"), the choice documented there:
--
-- - a POST of `application/json`, the event `{id, eventType = "HSCodeAssigned",
--   registrationId, connectorName, companyId, createdDate, itemId, itemCode,
--   classifications = {ItemClassificationOutputModel...}}`;
-- - headers `X-Avalara-Event`, `X-Avalara-Event-Id`, `X-Avalara-Delivery-Attempt`,
--   `X-Avalara-Timestamp` (epoch seconds) and `X-Avalara-Signature`:
--   `v1=` hex HMAC-SHA256 of `"<timestamp>.<body>"` under the registration's
--   secret (`client:webhook_secret(registrationId)`, derived from the license
--   key, so the receiver never holds the key itself);
-- - a delivery that gets no 2xx is sent again, the same event `id`: handle
--   an event once (the `seen` option).
--
-- When the service's real form differs, `verify` (a function) replaces the
-- signature check.
-- @module avalara.webhook
local core = require "avalara.core"
local cjson = require "cjson.safe"

local M = {}

--- The event this module reads.
M.EVENT = "HSCodeAssigned"

--- How far a delivery's timestamp may be from the receiver's clock, in seconds.
M.TOLERANCE = 300

--- The header names, lower case.
M.HEADERS = { event = "x-avalara-event", id = "x-avalara-event-id", attempt = "x-avalara-delivery-attempt",
  timestamp = "x-avalara-timestamp", signature = "x-avalara-signature" }

--- The signing secret of a registration's deliveries: hex HMAC-SHA256 of
-- `"avalara-hscode webhook <registrationId>"` under the license key (what
-- `client:webhook_secret` returns). A secret: keep it out of logs.
-- @string license_key
-- @param registration_id the `registrationId`
-- @treturn string 64 hex digits
function M.secret(license_key, registration_id)
  if type(license_key) ~= "string" or license_key == "" then
    error("avalara.webhook.secret: 'license_key' must be a non-empty string", 2)
  end
  local id = tonumber(registration_id)
  if not id or id ~= math.floor(id) or id < 1 then
    error("avalara.webhook.secret: 'registration_id' must be a registration's id (got " .. tostring(registration_id)
      .. ")", 2)
  end
  return core.hmac_sha256(license_key, string.format("avalara-hscode webhook %d", id))
end

--- The `X-Avalara-Signature` value of a delivery: `"v1=" .. hex HMAC-SHA256`
-- of `"<timestamp>.<body>"` under `secret`.
-- @string secret
-- @param timestamp epoch seconds (the `X-Avalara-Timestamp` value)
-- @string body the body exactly as sent
-- @treturn string
function M.sign(secret, timestamp, body)
  return "v1=" .. core.hmac_sha256(secret, tostring(timestamp) .. "." .. body)
end

-- Equal strings, compared in a time that does not depend on where they differ.
local function same(a, b)
  if type(a) ~= "string" or type(b) ~= "string" or #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do
    if a:byte(i) ~= b:byte(i) then diff = diff + 1 end
  end
  return diff == 0
end

local function bad(status, message)
  return nil, core.error { kind = status == 401 and "http" or "parse", status = status, message = message,
    retryable = false }
end

-- Headers by lower-case name (the first value of a repeated one).
local function lower_headers(headers)
  local out = {}
  for k, v in pairs(headers or {}) do
    if type(v) == "table" then v = v[1] end
    out[tostring(k):lower()] = v
  end
  return out
end

local function is_list(v)
  return type(v) == "table" and (next(v) == nil or v[1] ~= nil)
end

-- The shape of an HSCodeAssigned event, or a message.
local function shape(event)
  if type(event) ~= "table" or is_list(event) and next(event) ~= nil then return "the body is not a JSON object" end
  if event.eventType ~= M.EVENT then return "eventType is not " .. M.EVENT end
  if type(event.id) ~= "string" or event.id == "" then return "id is missing" end
  if type(event.itemId) ~= "number" then return "itemId is missing" end
  if type(event.itemCode) ~= "string" then return "itemCode is missing" end
  if not is_list(event.classifications) then return "classifications is not a list" end
  for i, k in ipairs(event.classifications) do
    if type(k) ~= "table" or type(k.productCode) ~= "string" or type(k.country) ~= "string" then
      return "classifications[" .. i .. "] has no productCode and country"
    end
  end
end

--- Parses and checks a delivery: the signature (under `opts.secret`), the
-- timestamp (within `opts.tolerance` seconds), the event name and the
-- event's shape.
-- @string body the request body exactly as received
-- @tparam table headers the request headers (any case)
-- @tparam table opts `{secret, tolerance = 300, now = os.time}`, or `{verify = function(body,
-- headers) -> true | nil, message}` for another check; `secret = false` checks nothing
-- (tests only)
-- @return the event (`{id, eventType, registrationId, companyId, itemId, itemCode,
-- classifications, ...}`, with `attempt` from the headers), or nil, err (`err.status`:
-- 401 for a signature or timestamp that does not check, 400 for a malformed delivery)
function M.parse(body, headers, opts)
  if type(opts) ~= "table" then error("avalara.webhook.parse: 'opts' must be a table ({secret = ...})", 2) end
  if opts.secret == nil and opts.verify == nil then
    error("avalara.webhook.parse: give 'secret' (client:webhook_secret(registrationId)) or 'verify'", 2)
  end
  if type(body) ~= "string" then return bad(400, "no body") end
  local h = lower_headers(headers)
  if opts.verify then
    local ok, why = opts.verify(body, h)
    if not ok then return bad(401, "the delivery does not check: " .. tostring(why)) end
  elseif opts.secret ~= false then
    local ts = tonumber(h[M.HEADERS.timestamp])
    if not ts then return bad(401, "no " .. M.HEADERS.timestamp .. " header") end
    local now = (opts.now or os.time)()
    if math.abs(now - ts) > (opts.tolerance or M.TOLERANCE) then
      return bad(401, "the delivery's timestamp is too far from now (a replay, or a wrong clock)")
    end
    if not same(h[M.HEADERS.signature], M.sign(opts.secret, h[M.HEADERS.timestamp], body)) then
      return bad(401, "the signature does not match (another secret, or a changed body)")
    end
  end
  if h[M.HEADERS.event] ~= nil and h[M.HEADERS.event] ~= M.EVENT then
    return bad(400, "not an " .. M.EVENT .. " event (" .. tostring(h[M.HEADERS.event]) .. ")")
  end
  local event = cjson.decode(body)
  local why = shape(event)
  if why then return bad(400, why) end
  event.attempt = tonumber(h[M.HEADERS.attempt])
  return event
end

--- Handles the current request as a delivery, in OpenResty's content phase:
-- reads the body and headers, `parse`s them, calls `on_event(event)` and
-- answers 200 (`{"ok":true}`); a delivery that does not check gets 401 or
-- 400 and `on_event` is not called; `on_event` raising gets 500, so the
-- service sends the event again.
-- @tparam table opts as for `parse`, plus `on_event(event)` and `seen(id) -> boolean` (an
-- event id already handled: answered 200 without calling `on_event`)
function M.openresty(opts)
  if type(opts) ~= "table" or type(opts.on_event) ~= "function" then
    error("avalara.webhook.openresty: 'on_event' must be a function", 2)
  end
  local ngx = rawget(_G, "ngx")
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local path = ngx.req.get_body_file()
    local f = path and io.open(path, "rb")
    if f then body = f:read("*a"); f:close() end
  end
  local function answer(status, value)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.print(cjson.encode(value))
    return ngx.exit(status)
  end
  if ngx.req.get_method() ~= "POST" then return answer(405, { error = "POST a delivery" }) end
  local event, err = M.parse(body, ngx.req.get_headers(100), opts)
  if not event then return answer(err.status, { error = err.message }) end
  if opts.seen and opts.seen(event.id) then return answer(200, { ok = true, duplicate = true }) end
  local ok, why = pcall(opts.on_event, event)
  if not ok then
    ngx.log(ngx.ERR, "avalara.webhook: on_event raised: ", tostring(why))
    return answer(500, { error = "the event could not be handled" })
  end
  return answer(200, { ok = true })
end

return M
