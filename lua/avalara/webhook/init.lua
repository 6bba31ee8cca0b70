--- Receiving the Items flow's webhook deliveries: parse and check an
-- `HSCodeAssigned` event (docs/api-contracts.md section 2.7), handle each event
-- once, in any Lua or in OpenResty.
--
--    -- nginx: lua_shared_dict avalara_webhooks 1m;
--    --        location = /avalara/webhook { content_by_lua_block { ... } }
--    local webhook = require "avalara.webhook"
--    webhook.openresty {
--      scheme = "body",                               -- or "header"
--      secret = os.getenv("AVALARA_WEBHOOK_SECRET"),  -- the key given at registration
--      seen = webhook.seen.shared_dict("avalara_webhooks"),
--      on_event = function(event)
--        for _, k in ipairs(event.classifications) do
--          print(event.itemCode, k.country, k.systemCode, k.productCode)
--        end
--      end,
--    }
--
-- Avalara publishes no payload, headers or signature for `HSCodeAssigned`
-- deliveries; the event is what the project's emulator sends
-- (emulator/README.md, "Webhook deliveries"). `scheme` says how it is signed
-- (docs/items.md, "Webhook signing schemes"): `"body"` is the only scheme
-- Avalara publishes (E-Invoicing: the signature inside each message of the
-- body, under the subscriber's key; `avalara.webhook.body`), `"header"` is
-- this project's own assumption (`X-Avalara-Signature` under a secret derived
-- from the license key; `avalara.webhook.header`). Without `scheme` a
-- receiver checks `"header"`, as before the choice existed, and warns once
-- (`avalara.warning`): a later release requires it.
--
-- What a receiver defends against: a forged delivery (no valid signature
-- under a secret of at least 16 bytes, compared in constant time: an empty,
-- short or missing secret is a configuration error, never "accept
-- anything"), an old one (header: its timestamp more than `tolerance`
-- seconds away; body: the event's signed `createdDate` more than `max_age`
-- seconds old), and the same event handled twice (a replay, a retry, two
-- copies at once): `seen` claims each event id in one atomic check-and-set
-- (shared dict `add`, Redis `SET NX`, SQLite `INSERT OR IGNORE`, a store's
-- `cas`) before `on_event` runs. `verify` (a function) can replace the header
-- scheme's check. The seen-sets are `avalara.webhook.seen`.
-- @module avalara.webhook
local core = require "avalara.core"
local cjson = require "cjson.safe"
local clock = require "avalara.clock"
local seen_sets = require "avalara.webhook.seen"
local body_scheme = require "avalara.webhook.body"
local header_scheme = require "avalara.webhook.header"
local handling = require "avalara.webhook.handling"
local warning = require "avalara.warning"

local M = {}

--- The event this module reads.
M.EVENT = "HSCodeAssigned"

--- How far a delivery's timestamp may be from the receiver's clock, in seconds.
M.TOLERANCE = seen_sets.TOLERANCE

--- Where the event ids already handled are kept, each claimed in one atomic
-- check-and-set (`avalara.webhook.seen`: `shared_dict`, `redis`, `store`, `sqlite`).
M.seen = seen_sets

--- The shortest signing secret accepted, in bytes (`client:webhook_secret` gives 64).
M.MIN_SECRET = 16

--- The signing schemes a receiver checks (`scheme`): `"header"` (this
-- project's assumption) and `"body"` (Avalara's published E-Invoicing scheme).
M.SCHEMES = { header = true, body = true }

--- The algorithms of the body scheme, by their published names (`"sha256"`, `"sha512"`).
M.ALGORITHMS = { "sha256", "sha512" }

--- How old an event's signed `createdDate` may be under the body scheme, in seconds.
M.MAX_AGE = body_scheme.MAX_AGE

--- The header names, lower case.
M.HEADERS = header_scheme.HEADERS

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

-- What is wrong with a signing secret (never showing it), or nil.
local function secret_problem(secret)
  if secret == nil then return "is not set" end
  if type(secret) ~= "string" then return "is a " .. type(secret) .. ", not a string" end
  if secret == "" then return "is empty" end
  if #secret < M.MIN_SECRET then return "is shorter than " .. M.MIN_SECRET .. " bytes" end
end

local function secret_message(why)
  return "the webhook signing secret ('secret', e.g. AVALARA_WEBHOOK_SECRET) " .. why
    .. ": set it to the key given at registration (scheme \"body\") or client:webhook_secret(registrationId) "
    .. "(scheme \"header\"); no delivery is accepted meanwhile"
end

--- The `X-Avalara-Signature` value of a delivery: `"v1=" .. hex HMAC-SHA256`
-- of `"<timestamp>.<body>"` under `secret`.
-- @string secret
-- @param timestamp epoch seconds (the `X-Avalara-Timestamp` value)
-- @string body the body exactly as sent
-- @treturn string
function M.sign(secret, timestamp, body)
  if type(secret) ~= "string" then error("avalara.webhook.sign: 'secret' must be a string", 2) end
  return header_scheme.sign(secret, timestamp, body)
end

--- The `signature` of one message under the body scheme: `{type = "hmac",
-- algorithm, value = hex HMAC of message}` (for senders and tests).
-- @string key the subscriber's key
-- @string message the `message` value's JSON text, exactly as it goes into the body
-- @string[opt="sha256"] algorithm `"sha256"` or `"sha512"`
-- @treturn table
function M.sign_message(key, message, algorithm)
  return body_scheme.sign(key, message, algorithm)
end

local function bad(status, message)
  return nil, core.error { kind = status == 400 and "parse" or "http", status = status, message = message,
    retryable = status >= 500 }
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
  if #event.id > 200 or event.id:find("%c") then return "id is longer than 200 bytes or has control characters" end
  if type(event.itemId) ~= "number" then return "itemId is missing" end
  if type(event.itemCode) ~= "string" then return "itemCode is missing" end
  if not is_list(event.classifications) then return "classifications is not a list" end
  for i, k in ipairs(event.classifications) do
    if type(k) ~= "table" or type(k.productCode) ~= "string" or type(k.country) ~= "string" then
      return "classifications[" .. i .. "] has no productCode and country"
    end
  end
end

local warned = false

-- The scheme asked for: "header" when none is given (and no `verify`), with
-- one warning per process.
local function scheme_of(where, opts)
  local scheme = opts.scheme
  if scheme == nil then
    if opts.verify == nil and not warned then
      warned = true
      warning.default(where .. ": no 'scheme' given: checking the \"header\" scheme (this project's assumption, "
        .. "not published by Avalara); say scheme = \"header\" or \"body\" (docs/items.md, \"Webhook signing "
        .. "schemes\"): a later release requires it")
    end
    return "header"
  end
  return scheme
end

local function check_options(where, opts)
  if type(opts) ~= "table" then error(where .. ": 'opts' must be a table ({scheme = ..., secret = ...})", 3) end
  local scheme = opts.scheme
  if scheme ~= nil and not M.SCHEMES[scheme] then
    error(where .. ": 'scheme' must be \"header\" or \"body\" (got " .. tostring(scheme) .. ")", 3)
  end
  if opts.verify ~= nil and type(opts.verify) ~= "function" then
    error(where .. ": 'verify' must be a function(body, headers)", 3)
  end
  if opts.verify ~= nil and scheme == "body" then
    error(where .. ": 'verify' replaces the header scheme's check; it cannot go with scheme = \"body\"", 3)
  end
  local alg = opts.algorithm
  if alg ~= nil and (scheme ~= "body" or not body_scheme.ALGORITHMS[alg]) then
    error(where .. ": 'algorithm' is the body scheme's, \"sha256\" or \"sha512\" (got " .. tostring(alg)
      .. (scheme ~= "body" and " with scheme " .. tostring(scheme) or "") .. ")", 3)
  end
  local age = opts.max_age
  if age ~= nil and (type(age) ~= "number" or age <= 0 or age ~= age) then
    error(where .. ": 'max_age' must be a positive number of seconds", 3)
  end
  local t = opts.tolerance
  if t ~= nil and (type(t) ~= "number" or t <= 0 or t ~= t) then
    error(where .. ": 'tolerance' must be a positive number of seconds", 3)
  end
  if opts.now ~= nil and type(opts.now) ~= "function" then error(where .. ": 'now' must be a function", 3) end
end

-- The header scheme (or `verify`): the event, or nil, err.
local function parse_header(body, h, opts)
  if opts.verify then
    if type(body) ~= "string" then return bad(400, "no body") end
    local ok, why = opts.verify(body, h)
    if not ok then return bad(401, "the delivery does not check: " .. tostring(why)) end
  else
    local problem = secret_problem(opts.secret)
    if problem then return bad(500, secret_message(problem)) end
    if type(body) ~= "string" then return bad(400, "no body") end
    local ok, status, why = header_scheme.check(body, h, { secret = opts.secret,
      tolerance = opts.tolerance or M.TOLERANCE }, (opts.now or clock.time)())
    if not ok then return bad(status, why) end
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

-- The body scheme: the list of events, or nil, err.
local function parse_body(body, opts)
  local problem = secret_problem(opts.secret)
  if problem then return bad(500, secret_message(problem)) end
  if type(body) ~= "string" then return bad(400, "no body") end
  local messages, doc, why = body_scheme.check(body, opts)
  if not messages then return bad(doc, why) end
  local now = (opts.now or clock.time)()
  local window = { max_age = opts.max_age or M.MAX_AGE, tolerance = opts.tolerance or M.TOLERANCE }
  local attempt = tonumber(doc.retry_count)
  local events = { id = doc.id, attempt = attempt }
  for n, m in ipairs(messages) do
    local where = "items[" .. n .. "]"
    local name = doc.items[n].event_name
    if name ~= nil and name ~= M.EVENT then
      return bad(400, where .. " is not an " .. M.EVENT .. " event (" .. tostring(name):sub(1, 60) .. ")")
    end
    local event = cjson.decode(m.text)
    local bad_shape = shape(event)
    if bad_shape then return bad(400, where .. ".message: " .. bad_shape) end
    local ok, late = body_scheme.fresh(event, now, window)
    if not ok then return bad(401, where .. ": " .. late) end
    event.attempt = attempt
    events[n] = event
  end
  return events
end

local function parse(where, body, headers, opts)
  if scheme_of(where, opts) == "body" then return parse_body(body, opts) end
  return parse_header(body, lower_headers(headers), opts)
end

--- Parses and checks a delivery under `opts.scheme`: the signature (under
-- `opts.secret`), the time (header: the timestamp within `opts.tolerance`
-- seconds; body: each event's signed `createdDate` at most `opts.max_age`
-- seconds old), the event name and the event's shape. It keeps no memory
-- of the ids it saw: `handle` (or `openresty`) with a `seen` refuses the
-- same event twice.
-- @string body the request body exactly as received
-- @tparam table headers the request headers (any case; the body scheme reads none)
-- @tparam table opts `{scheme = "header" | "body", secret, tolerance = 300, now = avalara.clock.time}`;
-- for `"body"` also `algorithm` (`"sha256"` or `"sha512"`: that one only; default both) and
-- `max_age = 86400`; or `{verify = function(body, headers) -> true | nil, message}` to
-- replace the header scheme's check. No `scheme`: `"header"`, with one warning per process.
-- A `secret` that is missing, not a string, empty or shorter than 16 bytes accepts nothing:
-- every delivery gets an error with status 500 that says so.
-- @return scheme `"header"`: the event (`{id, eventType, registrationId, companyId, itemId,
-- itemCode, classifications, ...}`, with `attempt` from the headers); scheme `"body"`: the
-- list of the invocation's events (each decoded from its signed bytes, with `attempt` =
-- `retry_count`; the list's `id` and `attempt` are the invocation's); or nil, err
-- (`err.status`: 401 for a signature, algorithm or time that does not check, 400 for a
-- malformed delivery, 500 for a receiver without a usable secret)
function M.parse(body, headers, opts)
  check_options("avalara.webhook.parse", opts)
  return parse("avalara.webhook.parse", body, headers, opts)
end

-- ------------------------------------------------------------ handling

local function check_handler(where, opts)
  check_options(where, opts)
  if type(opts.on_event) ~= "function" then error(where .. ": 'on_event' must be a function", 3) end
  if opts.verify == nil then
    local problem = secret_problem(opts.secret)
    if problem then error(where .. ": " .. secret_message(problem), 3) end
  end
  local seen = opts.seen
  if seen == nil or type(seen) == "function" then
    error(where .. ": 'seen' must be where event ids are claimed once (webhook.seen.shared_dict(name), "
      .. ".redis(client), .sqlite(path), .store(store), or a table with claim, done and release; the "
      .. "former seen(id) -> boolean cannot be atomic), or false to handle every copy", 3)
  end
  if seen ~= false then
    for _, m in ipairs { "claim", "done", "release" } do
      if type(seen) ~= "table" or type(seen[m]) ~= "function" then
        error(where .. ": 'seen' has no " .. m .. " method", 3)
      end
    end
    if type(seen.ttl) == "number" and seen.ttl < (opts.tolerance or M.TOLERANCE) then
      error(where .. ": the seen ids' 'ttl' is shorter than 'tolerance': a replay could be handled twice", 3)
    end
    if opts.scheme == "body" and type(seen.ttl) == "number" and seen.ttl < (opts.max_age or M.MAX_AGE) then
      error(where .. ": the seen ids' 'ttl' is shorter than 'max_age': a replay could be handled twice", 3)
    end
  end
end

--- Handles one delivery in any Lua (a CGI, a socket server, a queue
-- worker): `parse`s it, claims each event id in `opts.seen`, calls
-- `on_event(event)` and says what to answer.
-- @string body the request body exactly as received
-- @tparam table headers the request headers (any case)
-- @tparam table opts as for `parse` (`scheme`, `secret`, ...), plus `on_event(event)` and `seen`
-- (see `seen`; `false`: no memory, every copy is handled)
-- @return status, answer (a table to send as JSON), the event handled (scheme `"body"`: the
-- list of events handled) or nil, and an error message for the receiver's log (never the
-- secret): 200 handled, or already handled (`{ok = true, duplicate = true}`); 401 or 400
-- as from `parse`; 409 while another copy is being handled; 500 when `on_event` raised
-- (the service sends it again) or the secret is unusable; 503 when `seen` could not be asked
function M.handle(body, headers, opts)
  check_handler("avalara.webhook.handle", opts)
  local parsed, err = parse("avalara.webhook.handle", body, headers, opts)
  if not parsed then return err.status, { error = err.message }, nil, err.status >= 500 and err.message or nil end
  if opts.scheme == "body" then return handling.all(parsed, opts) end
  return handling.one(parsed, opts)
end

--- Handles the current request as a delivery, in OpenResty's content phase:
-- reads the body and headers and answers what `handle` says (200
-- `{"ok":true}`; 401, 400, 409, 500, 503 with `{"error": ...}`), logging
-- `on_event` failures and receiver trouble at `error` level.
-- A missing, empty, short (< 16 bytes) or non-string `secret`, or no `seen`,
-- raises here (the request gets nginx's 500, the error log says why; nothing
-- is accepted).
-- @tparam table opts as for `handle`: `{scheme, secret, seen, on_event, tolerance, ...}`
function M.openresty(opts)
  check_handler("avalara.webhook.openresty", opts)
  local ngx = rawget(_G, "ngx")
  local function answer(status, value)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.print(cjson.encode(value))
    return ngx.exit(status)
  end
  if ngx.req.get_method() ~= "POST" then return answer(405, { error = "POST a delivery" }) end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local path = ngx.req.get_body_file()
    local f = path and io.open(path, "rb")
    if f then body = f:read("*a"); f:close() end
  end
  local status, value, _, log = M.handle(body, ngx.req.get_headers(100), opts)
  if log then ngx.log(ngx.ERR, log) end
  return answer(status, value)
end

return M
