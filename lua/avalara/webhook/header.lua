--- The header scheme of webhook deliveries (`avalara.webhook`'s `scheme =
-- "header"`): this project's own assumption, published by nobody
-- (docs/api-contracts.md section 10; emulator/README.md, "Webhook
-- deliveries"). The body is the event; `X-Avalara-Timestamp` (epoch
-- seconds) and `X-Avalara-Signature` (`v1=` hex HMAC-SHA256 of
-- `"<timestamp>.<body>"`) under a secret derived from the license key
-- (`client:webhook_secret(registrationId)`).
-- @module avalara.webhook.header
local core = require "avalara.core"

local M = {}

--- The header names, lower case.
M.HEADERS = { event = "x-avalara-event", id = "x-avalara-event-id", attempt = "x-avalara-delivery-attempt",
  timestamp = "x-avalara-timestamp", signature = "x-avalara-signature" }

--- The `X-Avalara-Signature` value: `"v1=" .. hex HMAC-SHA256` of `"<timestamp>.<body>"` under `secret`.
-- @string secret
-- @param timestamp epoch seconds
-- @string body
-- @treturn string
function M.sign(secret, timestamp, body)
  return "v1=" .. core.hmac_sha256(secret, tostring(timestamp) .. "." .. body)
end

--- Equal strings, compared in a time that does not depend on where they differ.
-- @string a
-- @string b
-- @treturn boolean
function M.same(a, b)
  if type(a) ~= "string" or type(b) ~= "string" or #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do
    if a:byte(i) ~= b:byte(i) then diff = diff + 1 end
  end
  return diff == 0
end

--- Checks a delivery's timestamp and signature.
-- @string body the body exactly as received
-- @tparam table h the headers by lower-case name
-- @tparam table opts `{secret, tolerance}`
-- @number now epoch seconds
-- @return true, or nil, status (401), message
function M.check(body, h, opts, now)
  local stamp = h[M.HEADERS.timestamp]
  local ts = type(stamp) == "string" and stamp:match("^%d%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?$") and tonumber(stamp)
  if not ts then return nil, 401, "no " .. M.HEADERS.timestamp .. " header of epoch seconds" end
  if math.abs(now - ts) > opts.tolerance then
    return nil, 401, "the delivery's timestamp is too far from now (a replay, or a wrong clock)"
  end
  local given = h[M.HEADERS.signature]
  if type(given) ~= "string" or not given:match("^v1=" .. ("%x"):rep(64) .. "$") then
    local version = type(given) == "string" and given:match("^([%w%-]+)=") or nil
    return nil, 401, "the " .. M.HEADERS.signature .. " header is not \"v1=\" and 64 hex digits (HMAC-SHA256)"
      .. (version and version ~= "v1" and ": version or algorithm \"" .. version:sub(1, 20) .. "\" is not one this "
      .. "receiver checks" or "")
  end
  if not M.same(given:lower(), M.sign(opts.secret, stamp, body)) then
    return nil, 401, "the signature does not match (another secret, or a changed body)"
  end
  return true
end

return M
