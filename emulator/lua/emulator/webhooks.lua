-- Connector-sync webhook registrations (docs/api-contracts.md section 2.7) and the
-- deliveries of their `HSCodeAssigned` events: a real HTTP POST to the
-- registered URL from a worker's light thread (emulator.jobs), retried with
-- a doubling delay while the receiver fails. The payload is not published:
-- what is sent is the emulator's choice, described in README.md ("Webhook
-- deliveries"). A registration with a `signature` ({type, key, algorithm},
-- the shape of Avalara's E-Invoicing SubscriptionRegistration) gets the
-- published body-signature scheme (a WebhookInvocation of EventMessages);
-- one without gets the header scheme, this project's assumption.
local util = require "emulator.util"
local conf = require "emulator.conf"
local auth = require "emulator.auth"
local errors = require "emulator.errors"
local body = require "emulator.body"
local catalog = require "emulator.catalog"
local counters = require "emulator.counters"
local jobs = require "emulator.jobs"
local fetch = require "emulator.fetch"

local M = {}

M.EVENT = "HSCodeAssigned"
M.TYPE = "Webhook"

-- GET /api/v2/definitions/items/events: ItemReverseSyncEventDefinitionOutputModel[]
-- (the enum ItemReverseSyncEventType has one value, HSCodeAssigned = 1).
M.EVENTS = { { id = 1, name = M.EVENT, description = "An HS code was assigned to an item for a country "
  .. "(by an HS classification, or a verified code)." } }

local log_dict = ngx.shared.emu_jobs
local LOG_KEEP = 1000

local function reg_key(id) return "reg:" .. id end

local function registration(company, id)
  local reg = catalog.get_value(reg_key(id))
  if not reg or reg.companyId ~= company then return nil end
  return reg
end

-- The published ItemReverseSyncRegistrationOutputModel (internal `_` fields
-- left out), with `signature` {type, algorithm} (never the key) when one was given.
local function public(reg)
  local out = util.public(reg)
  if reg._signature then out.signature = { type = reg._signature.type, algorithm = reg._signature.algorithm } end
  return out
end

local function not_found(id)
  return errors.not_found("Registration", id, "registrationId")
end

local function guard(ctx)
  return auth.company(ctx, conf.get().items_scopes)
end

-- `events` is typed as one enum value in the SDKs, "the list of events" in
-- their docs: both forms are taken, and it must name HSCodeAssigned.
local function read_events(c, value, field, required)
  if body.blank(value) then
    if required then c.add("ValueRequiredError", { field }, field) end
    return nil
  end
  local list = type(value) == "table" and value or { value }
  if #list == 0 then c.add("ValueRequiredError", { field }, field); return nil end
  for _, v in ipairs(list) do
    if v ~= M.EVENT and v ~= 1 then
      c.add("InvalidEnumValue", { field, tostring(v), M.EVENT }, field)
      return nil
    end
  end
  return M.EVENT
end

local function read_type(c, value, field, required)
  if body.blank(value) then
    if required then c.add("ValueRequiredError", { field }, field) end
    return nil
  end
  if value ~= M.TYPE and value ~= 0 then
    c.add("InvalidEnumValue", { field, tostring(value), M.TYPE }, field)
    return nil
  end
  return M.TYPE
end

-- The E-Invoicing SubscriptionRegistration's `signature`: {type = "hmac" |
-- "none", key, algorithm = "sha256" | "sha384" | "sha512"} (the published
-- enums), the key kept out of every answer.
M.ALGORITHMS = { sha256 = true, sha384 = true, sha512 = true }

local function read_signature(c, value)
  if body.blank(value) then return nil end
  if not body.is_object(value) then
    c.add("ValidationException", { "Field signature must be an object {type, key, algorithm}." }, "signature")
    return nil
  end
  if value.type ~= "hmac" and value.type ~= "none" then
    c.add("InvalidEnumValue", { "signature.type", tostring(value.type), "hmac, none" }, "signature.type")
    return nil
  end
  if not M.ALGORITHMS[value.algorithm] then
    c.add("InvalidEnumValue", { "signature.algorithm", tostring(value.algorithm), "sha256, sha384, sha512" },
      "signature.algorithm")
    return nil
  end
  local key = value.key
  if value.type == "hmac" and (type(key) ~= "string" or key == "" or #key > 1024) then
    c.add("IncorrectValueForField", { "signature.key", "signature.key must be a string of 1 to 1024 characters." },
      "signature.key")
    return nil
  end
  return { type = value.type, algorithm = value.algorithm, key = value.type == "hmac" and key or nil }
end

local function read_url(c, value, required)
  local url = c.string(value, "url", 2048, required)
  if url and not url:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/?#%s]+[^%s]*$") then
    c.add("IncorrectValueForField", { "url", "url must be an absolute http:// or https:// URL." }, "url")
    return nil
  end
  return url
end

-- POST /api/v2/connector-sync/companies/{companyId}/registrations
function M.create(ctx)
  local rec = guard(ctx)
  if not rec then return end
  local doc = body.json()
  if doc == nil then return end
  local c = body.checker()
  if not body.is_object(doc) then
    c.add("ValidationException", { "The request body must be an ItemReverseSyncRegistrationInputModel object." },
      "body")
    return c.send(400)
  end
  local input = { connectorName = c.string(doc.connectorName, "connectorName", 255, true),
    url = read_url(c, doc.url, true), typeName = read_type(c, doc.typeName, "typeName", true),
    events = read_events(c, doc.events, "events", true), signature = read_signature(c, doc.signature) }
  if c.send(400) then return end
  for id = 1, catalog.last_id("registration") do
    local other = registration(ctx.company, id)
    if other and other.connectorName == input.connectorName and other.url == input.url then
      return errors.send(400, "DuplicateEntry", { target = "IncorrectData", details = {
        errors.detail("DuplicateEntry", nil, "url") } })
    end
  end
  local now = util.iso_date(util.now())
  local reg = { registrationId = catalog.next_id("registration"), companyId = ctx.company,
    connectorName = input.connectorName, url = input.url, typeName = input.typeName, events = input.events,
    isActive = true, createdDate = now, modifiedDate = now, _account = rec.account, _signature = input.signature }
  catalog.set_value(reg_key(reg.registrationId), reg)
  return util.json(201, public(reg))
end

-- GET …/registrations: every registration of the company (the route takes
-- no query parameters: one page, no @nextLink).
function M.list(ctx)
  if not guard(ctx) then return end
  local list = {}
  for id = 1, catalog.last_id("registration") do
    local reg = registration(ctx.company, id)
    if reg then list[#list + 1] = public(reg) end
  end
  return fetch.send(list, #list)
end

-- GET …/registrations/{registrationId}
function M.get(ctx)
  if not guard(ctx) then return end
  local reg = registration(ctx.company, tonumber(ctx.captures[2]))
  if not reg then return not_found(ctx.captures[2]) end
  return util.json(200, public(reg))
end

-- PATCH …/registrations/{registrationId}: only the fields sent change.
function M.update(ctx)
  if not guard(ctx) then return end
  local id = tonumber(ctx.captures[2])
  local doc = body.json()
  if doc == nil then return end
  local c = body.checker()
  if not body.is_object(doc) then
    c.add("ValidationException", { "The request body must be an ItemReverseSyncRegistrationUpdateModel object." },
      "body")
    return c.send(400)
  end
  local changes = { url = read_url(c, doc.url), typeName = read_type(c, doc.typeName, "typeName"),
    events = read_events(c, doc.events, "events") }
  if c.send(400) then return end
  local reg = registration(ctx.company, id)
  if not reg then return not_found(ctx.captures[2]) end
  for k, v in pairs(changes) do reg[k] = v end
  reg.modifiedDate = util.iso_date(util.now())
  catalog.set_value(reg_key(id), reg)
  return util.json(200, public(reg))
end

-- DELETE …/registrations/{registrationId}: ObjectDeletedErrorModel[].
function M.delete(ctx)
  if not guard(ctx) then return end
  local id = tonumber(ctx.captures[2])
  if not registration(ctx.company, id) then return not_found(ctx.captures[2]) end
  catalog.delete_value(reg_key(id))
  return util.json(200, { errors.deleted() })
end

-- GET /api/v2/definitions/items/events
function M.events()
  local rec = auth.require_token(conf.get().items_scopes)
  if not rec or not auth.rate_limit(rec) then return end
  return util.json(200, M.EVENTS)
end

-- ---------------------------------------------------------------- deliveries

-- The key deliveries to a registration are signed with: hex HMAC-SHA256 of
-- "avalara-hscode webhook <registrationId>" under the account's license
-- key (the client computes the same, `client:webhook_secret(id)`, so a
-- receiver holds this key, never the license key).
function M.secret(license_key, registration_id)
  return util.hmac_sha256_hex(license_key, string.format("avalara-hscode webhook %d", registration_id))
end

-- The signature header value of a delivery: "v1=" hex HMAC-SHA256 of
-- "<timestamp>.<body>" under the registration's key.
function M.signature(secret, timestamp, text)
  return "v1=" .. util.hmac_sha256_hex(secret, timestamp .. "." .. text)
end

-- Queues one HSCodeAssigned event per active registration of the item's
-- company: `classifications` are the ItemClassificationOutputModels just
-- assigned to the item.
function M.publish(doc, classifications)
  if #classifications == 0 then return end
  for id = 1, catalog.last_id("registration") do
    local reg = registration(doc.companyId, id)
    if reg and reg.isActive and reg.events == M.EVENT then
      local event = { id = util.uuid(), eventType = M.EVENT, registrationId = reg.registrationId,
        connectorName = reg.connectorName, companyId = doc.companyId, createdDate = util.iso_date(util.now()),
        itemId = doc.id, itemCode = doc.itemCode, classifications = classifications }
      jobs.push("deliver", { registrationId = reg.registrationId, eventId = event.id, attempt = 1,
        body = util.json_encode(event), invocationId = util.uuid(), receivedAt = event.createdDate })
    end
  end
end

-- host, port, path of an http(s) URL; "localhost" is 127.0.0.1 (nginx has
-- no resolver here: other host names must be IP addresses).
local function parse_url(url)
  local scheme, authority, path = url:match("^(%a+)://([^/?#]+)(.*)$")
  if not scheme then return nil end
  scheme = scheme:lower()
  local host, port = authority:match("^%[(.-)%]:?(%d*)$")
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if host == "localhost" then host = "127.0.0.1" end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  if path == "" then path = "/" end
  return scheme, host, port, path, authority
end

-- POSTs `text` to `url` and reads the status line: status, or nil, why.
function M.post(url, headers, text, timeout)
  local scheme, host, port, path, authority = parse_url(url)
  if not scheme then return nil, "bad URL" end
  local sock = ngx.socket.tcp()
  sock:settimeout(timeout * 1000)
  local ok, err = sock:connect(host, port)
  if not ok then return nil, "connect: " .. tostring(err) end
  if scheme == "https" then
    -- The emulator does not check the receiver's certificate (a test CA).
    ok, err = sock:sslhandshake(nil, host, false)
    if not ok then sock:close(); return nil, "tls: " .. tostring(err) end
  end
  local lines = { "POST " .. path .. " HTTP/1.1", "Host: " .. authority, "Connection: close",
    "Content-Length: " .. #text }
  for _, h in ipairs(headers) do lines[#lines + 1] = h[1] .. ": " .. h[2] end
  ok, err = sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. text)
  if not ok then sock:close(); return nil, "send: " .. tostring(err) end
  local line
  line, err = sock:receive("*l")
  sock:close()
  if not line then return nil, "receive: " .. tostring(err) end
  local status = tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
  if not status then return nil, "not an HTTP response" end
  return status
end

local function log(entry)
  local n = log_dict:incr("log:seq", 1, 0)
  log_dict:set("log:" .. n, util.json_encode(entry))
  log_dict:delete("log:" .. (n - LOG_KEEP))
end

-- The deliveries tried so far (at most the last 1000), oldest first:
-- {eventId, registrationId, url, attempt, status | error, delivered, at}.
function M.deliveries()
  local out = {}
  local last = log_dict:get("log:seq") or 0
  for n = math.max(1, last - LOG_KEEP + 1), last do
    local raw = log_dict:get("log:" .. n)
    if raw then out[#out + 1] = util.json_decode(raw) end
  end
  return out
end

-- The published body-signature scheme (E-Invoicing): a WebhookInvocation
-- whose one EventMessage carries the event as `message`, signed over the
-- message's bytes exactly as they stand in the body, in lowercase hex. The
-- same invocation id on every attempt, `retry_count` = the attempt.
function M.invocation(job, reg, now)
  local sig = reg._signature
  job.invokedAt = job.invokedAt or now
  local head = util.json_encode { id = job.invocationId, retry_count = job.attempt,
    retry_max = conf.get().webhook_attempts, invocation_timestamp = job.invokedAt, retry_timestamp = now }
  local rest = util.json_encode { signature = { type = sig.type, algorithm = sig.algorithm,
    value = sig.type == "hmac" and util.hmac_hex(sig.algorithm, sig.key, job.body) or "" },
    tenant_id = tostring(reg.companyId), correlation_id = job.eventId, system_code = "AvaTax",
    event_name = M.EVENT, event_version = "1", receipt_timestamp = job.receivedAt }
  return head:sub(1, -2) .. ',"items":[{"message":' .. job.body .. "," .. rest:sub(2) .. "]}"
end

-- One attempt of a queued delivery (a jobs handler); a failure is queued
-- again after retry_delay * 2^(attempt - 1) seconds, up to the attempts
-- configured.
local function deliver(job)
  local reg = catalog.get_value(reg_key(job.registrationId))
  if not reg or not reg.isActive then return end -- deleted meanwhile: nothing to send
  local cfg = conf.get()
  local account = conf.account(reg._account)
  local timestamp = tostring(math.floor(util.now()))
  local headers = { { "Content-Type", "application/json" }, { "User-Agent", "avalara-emulator-webhooks/1" } }
  local text = job.body
  if reg._signature then
    text = M.invocation(job, reg, util.iso_date(util.now()))
  else
    for _, h in ipairs { { "X-Avalara-Event", M.EVENT }, { "X-Avalara-Event-Id", job.eventId },
      { "X-Avalara-Delivery-Attempt", tostring(job.attempt) }, { "X-Avalara-Timestamp", timestamp } } do
      headers[#headers + 1] = h
    end
    if account then
      headers[#headers + 1] = { "X-Avalara-Signature",
        M.signature(M.secret(account.license_key, reg.registrationId), timestamp, job.body) }
    end
  end
  counters.incr("webhooks:attempts")
  local status, err = M.post(reg.url, headers, text, cfg.webhook_timeout)
  local delivered = status ~= nil and status >= 200 and status < 300
  log { eventId = job.eventId, registrationId = reg.registrationId, url = reg.url, attempt = job.attempt,
    status = status, error = err, delivered = delivered, at = util.iso_date(util.now()) }
  if delivered then return counters.incr("webhooks:delivered") end
  if job.attempt >= cfg.webhook_attempts then return counters.incr("webhooks:failed") end
  counters.incr("webhooks:retries")
  local delay = cfg.webhook_retry_delay * 2 ^ (job.attempt - 1)
  job.attempt = job.attempt + 1
  jobs.push("deliver", job, util.now() + delay)
end
jobs.on("deliver", deliver)

return M
