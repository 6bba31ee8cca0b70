-- Fault injection: POST /_emulator/faults arms a fault for the next N
-- requests of a route (a route name, a group prefix such as "oauth" or
-- "classification", or "*"); the router asks take() before each handler.
local util = require "emulator.util"
local errors = require "emulator.errors"
local counters = require "emulator.counters"

local dict = ngx.shared.emu_faults

local M = {}

M.kinds = {
  ["500"] = true, ["502"] = true, ["503"] = true, ["429"] = true, reset = true, stall = true,
  truncated = true, invalid_json = true, html = true, oversized = true,
  IdentityServerError = true, AvalaraIdentityApiError = true,
}

local DEFAULT_SIZE = 16 * 1024 * 1024

-- Routes whose success is 201 Created (the status of the faults that
-- imitate a success).
local CREATED = { classification_create = true, registrations_create = true }

-- spec: route, kind, count?, retry_after?, stall_seconds?, size?, status?, close?
function M.add(spec)
  if type(spec) ~= "table" then return nil, "body must be a JSON object" end
  if type(spec.route) ~= "string" or spec.route == "" then return nil, "route is required" end
  spec.kind = spec.kind and tostring(spec.kind)
  if not M.kinds[spec.kind] then return nil, "unknown fault kind: " .. tostring(spec.kind) end
  local count = spec.count or 1
  if type(count) ~= "number" or count < 1 then return nil, "count must be a positive number" end
  spec.count = math.floor(count)
  dict:set("f:" .. spec.route, util.json_encode(spec))
  dict:set("n:" .. spec.route, spec.count)
  return spec
end

function M.clear()
  dict:flush_all()
  dict:flush_expired()
end

-- Armed faults with their remaining counts.
function M.list()
  local out = {}
  for _, key in ipairs(dict:get_keys(0)) do
    local route = key:match("^f:(.*)$")
    local remaining = route and dict:get("n:" .. route)
    if route and remaining and remaining > 0 then
      local spec = util.json_decode(dict:get(key))
      spec.remaining = remaining
      out[#out + 1] = spec
    end
  end
  return out
end

-- The names a fault may be armed under for this route, most specific first.
local function candidates(route)
  local out = { route }
  local prefix = route
  while true do
    prefix = prefix:match("^(.+)_[^_]+$")
    if not prefix then break end
    out[#out + 1] = prefix
  end
  out[#out + 1] = "*"
  return out
end

-- Consumes one use of the fault armed for `route`, if any.
function M.take(route)
  for _, name in ipairs(candidates(route)) do
    local raw = dict:get("f:" .. name)
    if raw then
      local left = dict:incr("n:" .. name, -1)
      if left and left >= 0 then
        if left == 0 then dict:delete("f:" .. name); dict:delete("n:" .. name) end
        return util.json_decode(raw)
      end
    end
  end
  return nil
end

local HTML = [[<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>emulated upstream gateway</center>
</body>
</html>
]]

-- Writes a raw HTTP response whose Content-Length promises more than is
-- sent, then closes the connection.
local function truncated(status)
  ngx.req.read_body()
  local sock = assert(ngx.req.socket(true))
  local body = '{"id":"truncated","status":"PENDING","item":{"description":"this body is cut sh'
  sock:send("HTTP/1.1 " .. status .. " OK\r\nContent-Type: application/json; charset=utf-8\r\n"
    .. "Content-Length: " .. (#body * 4) .. "\r\nx-correlation-id: " .. util.uuid()
    .. "\r\nConnection: close\r\n\r\n" .. body)
  return ngx.exit(ngx.OK)
end

-- A well-formed JSON document of exactly `size` bytes, streamed.
local function oversized(status, size)
  local head, tail = '{"value":"', '"}'
  size = math.max(size, #head + #tail)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json; charset=utf-8"
  ngx.header["Content-Length"] = size
  ngx.print(head)
  local chunk = string.rep("x", 65536)
  local left = size - #head - #tail
  while left > 0 do
    local n = math.min(left, #chunk)
    ngx.print(n == #chunk and chunk or chunk:sub(1, n))
    local ok = ngx.flush(true)
    if not ok then return ngx.exit(444) end
    left = left - n
  end
  ngx.print(tail)
  return ngx.exit(status)
end

-- Performs the fault. Returns true when the request should still be
-- handled normally afterwards (stall without close).
function M.apply(spec, ctx)
  counters.fault(ctx.route, spec.kind)
  local kind = spec.kind
  local ok_status = spec.status or (CREATED[ctx.route] and 201 or 200)
  local retry = tostring(spec.retry_after or 1)
  -- Published ErrorCodeIds (no source gives the real 5xx bodies).
  if kind == "500" then
    return errors.send(500, "InternalServerError", { target = "AvaTaxApiServer" })
  elseif kind == "502" then
    return errors.send(502, "Unexpected", { args = { "Injected fault: bad gateway." } })
  elseif kind == "503" then
    return errors.send(503, "ServiceTimeout", { args = { "Injected fault: service unavailable." },
      headers = { ["Retry-After"] = retry } })
  elseif kind == "429" then
    return errors.send(429, "RateLimitExceeded", { args = { "Injected fault: too many requests." },
      target = "HttpRequest", headers = { ["Retry-After"] = retry } })
  elseif kind == "IdentityServerError" or kind == "AvalaraIdentityApiError" then
    -- AvaTax's errors 36 and 608 (no published status: 500 unless `status`)
    return errors.send(spec.status or 500, kind, { args = { "Injected fault." }, target = "HttpRequestHeaders" })
  elseif kind == "reset" then
    return ngx.exit(444)
  elseif kind == "stall" then
    ngx.sleep(spec.stall_seconds or 30)
    if spec.close then return ngx.exit(444) end
    return true
  elseif kind == "truncated" then
    return truncated(ok_status)
  elseif kind == "invalid_json" then
    return util.send(ok_status, "application/json; charset=utf-8", '{"status":"PENDING","id":<html>')
  elseif kind == "html" then
    return util.send(502, "text/html", HTML)
  elseif kind == "oversized" then
    return oversized(ok_status, spec.size or DEFAULT_SIZE)
  end
end

return M
