-- The effective configuration: the config file's table with the run-time
-- overrides of POST /_emulator/config (kept in a shared dict so every
-- worker sees them) laid over its top-level keys.
local init = require "emulator.init"
local util = require "emulator.util"

local dict = ngx.shared.emu_config

local M = {}

-- Key -> accepted Lua types of its value.
local schema = {
  accounts = "table", redirect_uris = "table", partners = "table",
  identity_scopes = "table", default_scope = "string", api_scopes = "table",
  token_ttl = "number", refresh_token_ttl = "number", code_ttl = "number",
  oauth2012_token_ttl = "number|boolean", oauth2012_expires_in = "string",
  classification_delay = "number", latency_ms = "number",
  rate_limit = "table|boolean", quotas = "table", legacy_sample_body = "boolean",
  max_item_code_length = "number", max_description_length = "number",
  max_item_group_length = "number", demo_extras = "boolean", deny_authorization = "boolean",
  items_scopes = "table", items_max_item_code_length = "number", items_max_per_request = "number",
  hscode_sla_hours = "number", webhook_attempts = "number", webhook_retry_delay = "number",
  webhook_timeout = "number",
  invalid_client_status = "number", discovery_max_age = "number|boolean",
  device_clients = "table", device_code_ttl = "number", device_interval = "number", device_slow_down = "number",
}

local cached_version, cached

local function merged()
  local version = dict:get("version") or 0
  if version == cached_version then return cached end
  local out = {}
  for k, v in pairs(init.base) do out[k] = v end
  local raw = dict:get("overrides")
  if raw then
    for k, v in pairs(util.json_decode(raw) or {}) do out[k] = v end
  end
  cached_version, cached = version, out
  return out
end

function M.get()
  return merged()
end

-- Checks and stores overrides; returns the effective config or nil, message.
function M.set(tbl)
  if type(tbl) ~= "table" then return nil, "body must be a JSON object" end
  for k, v in pairs(tbl) do
    local allowed = schema[k]
    if not allowed then return nil, "unknown config key: " .. tostring(k) end
    if not (("|" .. allowed .. "|"):find("|" .. type(v) .. "|", 1, true)) then
      return nil, "config key " .. k .. " must be " .. allowed
    end
    if type(v) == "number" and v < 0 then return nil, "config key " .. k .. " must be >= 0" end
  end
  if type(tbl.rate_limit) == "table" then
    local rl = tbl.rate_limit
    if type(rl.requests) ~= "number" or type(rl.window) ~= "number" or rl.window <= 0 then
      return nil, "rate_limit must be {requests = N, window = seconds}"
    end
  end
  if tbl.invalid_client_status ~= nil and tbl.invalid_client_status ~= 400 and tbl.invalid_client_status ~= 401 then
    return nil, "invalid_client_status must be 400 or 401"
  end
  local current = util.json_decode(dict:get("overrides") or "{}") or {}
  for k, v in pairs(tbl) do current[k] = v end
  dict:set("overrides", util.json_encode(current))
  dict:incr("version", 1, 0)
  return merged()
end

function M.reset()
  dict:delete("overrides")
  dict:incr("version", 1, 0)
end

function M.account(id)
  return id and merged().accounts[id] or nil
end

-- The classification quota of an account, or nil when it has none.
function M.quota(account_id)
  local cfg = merged()
  local q = cfg.quotas and cfg.quotas[account_id]
  if q == nil then
    local acct = cfg.accounts[account_id]
    q = acct and acct.quota
  end
  if q == false then return nil end
  return q
end

function M.contains(list, value)
  for _, v in ipairs(list or {}) do
    if v == value then return true end
  end
  return false
end

-- A loopback redirect URI without its port (RFC 8252 section 7.3: native
-- apps listen on a port of their choosing, which the server must accept).
local function loopback_any_port(uri)
  local scheme, host, rest = uri:match("^(http)://(127%.0%.0%.1):%d+(.*)$")
  if not scheme then scheme, host, rest = uri:match("^(http)://(%[::1%]):%d+(.*)$") end
  return scheme and (scheme .. "://" .. host .. rest) or nil
end

-- Whether `uri` is one of the registered redirect URIs `list`: exactly, or
-- a registered loopback URI on any port.
function M.redirect_allowed(list, uri)
  if type(uri) ~= "string" then return false end
  if M.contains(list, uri) then return true end
  local portless = loopback_any_port(uri)
  return portless ~= nil and M.contains(list, portless)
end

return M
