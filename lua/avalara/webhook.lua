--- Receiving the Items flow's webhook deliveries: parse and check an
-- `HSCodeAssigned` event (docs/api-contracts.md section 2.7), handle each event
-- once, in any Lua or in OpenResty.
--
--    -- nginx: lua_shared_dict avalara_webhooks 1m;
--    --        location = /avalara/webhook { content_by_lua_block { ... } }
--    local webhook = require "avalara.webhook"
--    webhook.openresty {
--      secret = os.getenv("AVALARA_WEBHOOK_SECRET"),  -- client:webhook_secret(registrationId)
--      seen = webhook.seen.shared_dict("avalara_webhooks"),
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
-- - a delivery that gets no 2xx is sent again, the same event `id` and body
--   under a new timestamp.
--
-- What a receiver defends against: a forged delivery (no valid signature
-- under a secret of at least 16 bytes: an empty, short or missing secret is
-- a configuration error, never "accept anything"), an old one (its
-- timestamp more than `tolerance` seconds away), and the same event handled
-- twice (a replay inside the window, a retry, two copies at once): `seen`
-- claims each event id in one atomic check-and-set (shared dict `add`,
-- Redis `SET NX`, SQLite `INSERT OR IGNORE`, a store's `cas`) before
-- `on_event` runs.
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

--- The shortest signing secret accepted, in bytes (`client:webhook_secret` gives 64).
M.MIN_SECRET = 16

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

-- What is wrong with a signing secret (never showing it), or nil.
local function secret_problem(secret)
  if secret == nil then return "is not set" end
  if type(secret) ~= "string" then return "is a " .. type(secret) .. ", not a string" end
  if secret == "" then return "is empty" end
  if #secret < M.MIN_SECRET then return "is shorter than " .. M.MIN_SECRET .. " bytes" end
end

local function secret_message(why)
  return "the webhook signing secret ('secret', e.g. AVALARA_WEBHOOK_SECRET) " .. why
    .. ": set it to client:webhook_secret(registrationId); no delivery is accepted meanwhile"
end

--- The `X-Avalara-Signature` value of a delivery: `"v1=" .. hex HMAC-SHA256`
-- of `"<timestamp>.<body>"` under `secret`.
-- @string secret
-- @param timestamp epoch seconds (the `X-Avalara-Timestamp` value)
-- @string body the body exactly as sent
-- @treturn string
function M.sign(secret, timestamp, body)
  if type(secret) ~= "string" then error("avalara.webhook.sign: 'secret' must be a string", 2) end
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

local function check_options(where, opts)
  if type(opts) ~= "table" then error(where .. ": 'opts' must be a table ({secret = ...})", 3) end
  if opts.verify ~= nil and type(opts.verify) ~= "function" then
    error(where .. ": 'verify' must be a function(body, headers)", 3)
  end
  local t = opts.tolerance
  if t ~= nil and (type(t) ~= "number" or t <= 0 or t ~= t) then
    error(where .. ": 'tolerance' must be a positive number of seconds", 3)
  end
  if opts.now ~= nil and type(opts.now) ~= "function" then error(where .. ": 'now' must be a function", 3) end
end

--- Parses and checks a delivery: the signature (under `opts.secret`), the
-- timestamp (within `opts.tolerance` seconds), the event name and the
-- event's shape. It keeps no memory of the ids it saw: `handle` (or
-- `openresty`) with a `seen` refuses the same event twice.
-- @string body the request body exactly as received
-- @tparam table headers the request headers (any case)
-- @tparam table opts `{secret, tolerance = 300, now = os.time}`, or `{verify = function(body,
-- headers) -> true | nil, message}` for another check. A `secret` that is missing, not a
-- string, empty or shorter than 16 bytes accepts nothing: every delivery gets an error
-- with status 500 that says so.
-- @return the event (`{id, eventType, registrationId, companyId, itemId, itemCode,
-- classifications, ...}`, with `attempt` from the headers), or nil, err (`err.status`:
-- 401 for a signature or timestamp that does not check, 400 for a malformed delivery,
-- 500 for a receiver without a usable secret)
function M.parse(body, headers, opts)
  check_options("avalara.webhook.parse", opts)
  local h = lower_headers(headers)
  if opts.verify then
    if type(body) ~= "string" then return bad(400, "no body") end
    local ok, why = opts.verify(body, h)
    if not ok then return bad(401, "the delivery does not check: " .. tostring(why)) end
  else
    local problem = secret_problem(opts.secret)
    if problem then return bad(500, secret_message(problem)) end
    if type(body) ~= "string" then return bad(400, "no body") end
    local stamp = h[M.HEADERS.timestamp]
    local ts = type(stamp) == "string" and stamp:match("^%d%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?$") and tonumber(stamp)
    if not ts then return bad(401, "no " .. M.HEADERS.timestamp .. " header of epoch seconds") end
    local now = (opts.now or os.time)()
    if math.abs(now - ts) > (opts.tolerance or M.TOLERANCE) then
      return bad(401, "the delivery's timestamp is too far from now (a replay, or a wrong clock)")
    end
    if not same(h[M.HEADERS.signature], M.sign(opts.secret, stamp, body)) then
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

-- ------------------------------------------------------------ seen ids

--- Where the event ids already handled are kept: each one is claimed in one
-- atomic check-and-set before `on_event` runs, so of two copies of an event
-- (a retry, a replay, two at once, on any worker or host sharing the place)
-- exactly one is handled.
--
-- A `seen` is any table with three methods (write your own for another database):
--
--    seen:claim(id)         -> token (handle it) | false, "pending" | "done" | nil, err
--    seen:done(id, token)   -> true | nil, err    -- handled: remembered `ttl` seconds
--    seen:release(id, token)                      -- on_event failed: the retry is handled
--
-- `claim` must be one atomic operation that marks `id` as pending for
-- `pending_ttl` seconds only if it is absent; `release` must forget the
-- claim only while it is still this token's. The ones below take `opts`
-- `{ttl = 86400, pending_ttl = 120, prefix = "avalara.webhook:"}`: `ttl`
-- (seconds a handled id is remembered) must be at least the timestamp
-- tolerance (300 s), or a replay inside the window would be handled again;
-- `pending_ttl` bounds how long a receiver that died while handling an
-- event blocks its retries (they are answered 409 meanwhile).
-- @section seen
M.seen = {}

local SEEN_OPTIONS = { ttl = true, pending_ttl = true, prefix = true, table = true, busy_timeout = true }

local function seen_options(where, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error(where .. ": 'opts' must be a table", 3) end
  for k in pairs(opts) do
    if not SEEN_OPTIONS[k] then error(where .. ": unknown option '" .. tostring(k) .. "'", 3) end
  end
  local o = { ttl = opts.ttl or 86400, pending_ttl = opts.pending_ttl or 120,
    prefix = opts.prefix or "avalara.webhook:" }
  if type(o.ttl) ~= "number" or o.ttl < M.TOLERANCE then
    error(where .. ": 'ttl' must be a number of seconds, at least the timestamp tolerance (" .. M.TOLERANCE .. ")", 3)
  end
  if type(o.pending_ttl) ~= "number" or o.pending_ttl <= 0 then
    error(where .. ": 'pending_ttl' must be a positive number of seconds", 3)
  end
  if type(o.prefix) ~= "string" then error(where .. ": 'prefix' must be a string", 3) end
  return o, opts
end

local function unique()
  return require("avalara.resp.client").unique()
end

-- Shared dict: `add` is the check-and-set (every worker of the nginx).
local Dict = {}
Dict.__index = Dict

function Dict:_dict()
  local dict = self.dict
  if type(dict) == "string" then
    local ngx = rawget(_G, "ngx")
    dict = ngx and ngx.shared and ngx.shared[dict]
    if not dict then error("avalara.webhook.seen.shared_dict: no lua_shared_dict '" .. self.dict .. "'", 0) end
  end
  return dict
end

function Dict:claim(id)
  local dict, token = self:_dict(), "pending " .. unique()
  local ok, err = dict:add(self.prefix .. id, token, self.pending_ttl)
  if ok then return token end
  if err ~= "exists" then return nil, "shared dict: " .. tostring(err) end
  return false, dict:get(self.prefix .. id) == "done" and "done" or "pending"
end

function Dict:done(id)
  local ok, err = self:_dict():set(self.prefix .. id, "done", self.ttl)
  if not ok then return nil, "shared dict: " .. tostring(err) end
  return true
end

function Dict:release(id, token)
  local dict = self:_dict()
  -- get and delete do not yield: no other request of this worker runs between them
  if dict:get(self.prefix .. id) == token then dict:delete(self.prefix .. id) end
  return true
end

--- The ids in an OpenResty shared dict (`lua_shared_dict NAME 1m;`), for
-- every worker of one nginx: the claim is the dict's `add`.
-- @param dict the dict's name, or `ngx.shared.NAME`
-- @tparam[opt] table opts `{ttl, pending_ttl, prefix}`
function M.seen.shared_dict(dict, opts)
  local where = "avalara.webhook.seen.shared_dict"
  if type(dict) ~= "string" and (type(dict) ~= "table" and type(dict) ~= "userdata" or dict.add == nil) then
    error(where .. ": 'dict' must be a lua_shared_dict's name or ngx.shared.NAME", 2)
  end
  local o = seen_options(where, opts)
  o.dict = dict
  return setmetatable(o, Dict)
end

-- Redis client: `SET key pending NX PX` is the check-and-set.
local Redis = {}
Redis.__index = Redis

-- KEYS: the id's key. ARGV: the claim's token. Deletes it only while it is that claim.
local RELEASE = [[
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
]]

local function ms(seconds) return string.format("%d", math.ceil(seconds * 1000)) end

function Redis:claim(id)
  local key, token = self.prefix .. id, "pending " .. unique()
  local ok, err = self.redis:command("SET", key, token, "NX", "PX", ms(self.pending_ttl))
  if ok == nil then return nil, err end
  if ok then return token end
  local state = self.redis:command("GET", key)
  return false, state == "done" and "done" or "pending"
end

function Redis:done(id)
  local ok, err = self.redis:command("SET", self.prefix .. id, "done", "PX", ms(self.ttl))
  if ok == nil then return nil, err end
  return true
end

function Redis:release(id, token)
  local ok, err = self.redis:eval(RELEASE, { self.prefix .. id }, { token })
  if ok == nil then return nil, err end
  return true
end

-- Any avalara.store: `cas(key, nil, ...)` (write only when absent) is the check-and-set.
local Store = {}
Store.__index = Store

function Store:claim(id)
  local ok, current = self.store:cas(self.prefix .. id, nil, { state = "pending" }, self.pending_ttl)
  if ok == nil then return nil, tostring(current) end
  if ok then return current end -- the version written: the token
  return false, type(current) == "table" and current.state == "done" and "done" or "pending"
end

function Store:done(id)
  local ok, err = self.store:set(self.prefix .. id, { state = "done" }, self.ttl)
  if not ok then return nil, err end
  return true
end

function Store:release(id, token)
  -- deleted only while it still has the claim's version
  local ok, err = self.store:cas(self.prefix .. id, token, nil)
  if ok == nil then return nil, err end
  return true
end

--- The ids on a Redis server, for every host and worker that reaches it:
-- the claim is `SET <prefix><id> pending NX PX <pending_ttl>` on an
-- `avalara.redis.client`, or one `cas` (a script on the server) on an
-- `avalara.store.redis` (then the store's own prefix comes first).
-- @param redis `avalara.redis.client.new{...}` or `avalara.store.redis{...}`
-- @tparam[opt] table opts `{ttl, pending_ttl, prefix}`
function M.seen.redis(redis, opts)
  local where = "avalara.webhook.seen.redis"
  if type(redis) ~= "table" then error(where .. ": give an avalara.redis.client or an avalara.store.redis", 2) end
  local o = seen_options(where, opts)
  if type(redis.command) == "function" and type(redis.eval) == "function" then
    o.redis = redis
    return setmetatable(o, Redis)
  end
  if type(redis.cas) == "function" then return M.seen.store(redis, opts) end
  error(where .. ": give an avalara.redis.client or an avalara.store.redis", 2)
end

--- The ids in any `avalara.store` (memory, `avalara.store.file`,
-- `avalara.store.redis`, ...): the claim is one `cas` that writes only when
-- the key is absent. A memory store is one process's only.
-- @tparam table store
-- @tparam[opt] table opts `{ttl, pending_ttl, prefix}`
function M.seen.store(store, opts)
  local where = "avalara.webhook.seen.store"
  if type(store) ~= "table" or type(store.cas) ~= "function" or type(store.set) ~= "function" then
    error(where .. ": 'store' must be an avalara.store (get, set, cas, delete, lock)", 2)
  end
  local o = seen_options(where, opts)
  o.store = store
  return setmetatable(o, Store)
end

-- SQLite (LuaSQL): `INSERT OR IGNORE` on the primary key is the check-and-set.
local Sqlite = {}
Sqlite.__index = Sqlite

local function sql_text(s) return "'" .. s:gsub("'", "''") .. "'" end

function Sqlite:_exec(sql)
  local r, err = self.conn:execute(sql)
  if r == nil then return nil, "sqlite " .. self.path .. ": " .. tostring(err) end
  if type(r) == "userdata" then
    local row = r:fetch({}, "n")
    r:close()
    return row or true
  end
  return r
end

function Sqlite:claim(id)
  local now, token = os.time(), "pending " .. unique()
  local _, err = self:_exec(("DELETE FROM %s WHERE expires < %d"):format(self.table, now))
  if err then return nil, err end
  local n
  n, err = self:_exec(("INSERT OR IGNORE INTO %s (id, state, expires) VALUES (%s, %s, %d)")
    :format(self.table, sql_text(id), sql_text(token), now + math.ceil(self.pending_ttl)))
  if n == nil then return nil, err end
  if n == 1 then return token end
  local row = self:_exec(("SELECT state FROM %s WHERE id = %s"):format(self.table, sql_text(id)))
  return false, type(row) == "table" and row[1] == "done" and "done" or "pending"
end

function Sqlite:done(id)
  local n, err = self:_exec(("INSERT OR REPLACE INTO %s (id, state, expires) VALUES (%s, 'done', %d)")
    :format(self.table, sql_text(id), os.time() + math.ceil(self.ttl)))
  if n == nil then return nil, err end
  return true
end

function Sqlite:release(id, token)
  local n, err = self:_exec(("DELETE FROM %s WHERE id = %s AND state = %s")
    :format(self.table, sql_text(id), sql_text(token)))
  if n == nil then return nil, err end
  return true
end

--- The ids in an SQLite database file (LuaSQL's `luasql.sqlite3`, Debian's
-- lua-sql-sqlite3), for every process on the host: the claim is `INSERT OR
-- IGNORE` on the id, the table's primary key. Blocking: meant for plain Lua
-- receivers (CGI, a socket server, a queue worker).
-- @string path the database file (made with its table if absent)
-- @tparam[opt] table opts `{ttl, pending_ttl, table = "avalara_webhook_seen", busy_timeout = 5}`
function M.seen.sqlite(path, opts)
  local where = "avalara.webhook.seen.sqlite"
  if type(path) ~= "string" or path == "" then error(where .. ": 'path' must be a database file's path", 2) end
  local o, given = seen_options(where, opts)
  o.table = given.table or "avalara_webhook_seen"
  if type(o.table) ~= "string" or not o.table:match("^[%a_][%w_]*$") then
    error(where .. ": 'table' must be an SQL name (letters, digits, _)", 2)
  end
  local busy = given.busy_timeout or 5
  if type(busy) ~= "number" or busy < 0 then error(where .. ": 'busy_timeout' must be seconds, >= 0", 2) end
  local ok, luasql = pcall(require, "luasql.sqlite3")
  if not ok then error(where .. ": needs LuaSQL's luasql.sqlite3 (Debian: lua-sql-sqlite3)", 2) end
  local conn, err = luasql.sqlite3():connect(path)
  if not conn then return nil, core.error { kind = "transport", message = where .. ": " .. tostring(err) } end
  o.conn, o.path = conn, path
  local self = setmetatable(o, Sqlite)
  for _, sql in ipairs {
    ("PRAGMA busy_timeout = %d"):format(math.floor(busy * 1000)),
    ("CREATE TABLE IF NOT EXISTS %s (id TEXT PRIMARY KEY, state TEXT NOT NULL, expires INTEGER NOT NULL)")
      :format(self.table),
    ("CREATE INDEX IF NOT EXISTS %s_expires ON %s (expires)"):format(self.table, self.table),
  } do
    local _, e = self:_exec(sql)
    if e then conn:close(); return nil, core.error { kind = "transport", message = where .. ": " .. e } end
  end
  return self
end

--- Closes the database (SQLite's seen).
function Sqlite:close()
  if self.conn then self.conn:close(); self.conn = nil end
end

-- @section end

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
  end
end

--- Handles one delivery in any Lua (a CGI, a socket server, a queue
-- worker): `parse`s it, claims its event id in `opts.seen`, calls
-- `on_event(event)` and says what to answer.
-- @string body the request body exactly as received
-- @tparam table headers the request headers (any case)
-- @tparam table opts as for `parse`, plus `on_event(event)` and `seen` (see `seen`; `false`:
-- no memory, every copy is handled)
-- @return status, answer (a table to send as JSON), the event handled or nil, and an error
-- message for the receiver's log (never the secret): 200 handled, or already handled
-- (`{ok = true, duplicate = true}`); 401 or 400 as from `parse`; 409 while another copy
-- is being handled; 500 when `on_event` raised (the service sends it again) or the secret
-- is unusable; 503 when `seen` could not be asked
function M.handle(body, headers, opts)
  check_handler("avalara.webhook.handle", opts)
  local event, err = M.parse(body, headers, opts)
  if not event then return err.status, { error = err.message }, nil, err.status >= 500 and err.message or nil end
  local seen, token = opts.seen, true
  if seen then
    local state
    token, state = seen:claim(event.id)
    if token == nil then
      return 503, { error = "the event could not be checked against the events seen" }, nil,
        "avalara.webhook: seen:claim failed: " .. tostring(state)
    end
    if not token then
      if state == "done" then return 200, { ok = true, duplicate = true } end
      return 409, { error = "this event is being handled: send it again later" }
    end
  end
  local ok, why = pcall(opts.on_event, event)
  if not ok then
    if seen then seen:release(event.id, token) end
    return 500, { error = "the event could not be handled" }, nil, "avalara.webhook: on_event raised: " .. tostring(why)
  end
  if seen then
    local done, derr = seen:done(event.id, token)
    if not done then
      return 200, { ok = true }, event, "avalara.webhook: seen:done failed (a retry after pending_ttl would be "
        .. "handled again): " .. tostring(derr)
    end
  end
  return 200, { ok = true }, event
end

--- Handles the current request as a delivery, in OpenResty's content phase:
-- reads the body and headers and answers what `handle` says (200
-- `{"ok":true}`; 401, 400, 409, 500, 503 with `{"error": ...}`), logging
-- `on_event` failures and receiver trouble at `error` level.
-- A missing, empty, short (< 16 bytes) or non-string `secret`, or no `seen`,
-- raises here (the request gets nginx's 500, the error log says why; nothing
-- is accepted).
-- @tparam table opts as for `handle`: `{secret, seen, on_event, tolerance}`
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
