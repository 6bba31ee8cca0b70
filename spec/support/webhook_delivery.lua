-- One receiver process handling one webhook delivery, for the concurrency
-- specs (spec/integration/items/webhooks_security_spec.lua): several of these start at
-- once on the same event and the same `seen`.
--
--   lua webhook_delivery.lua KIND TARGET START_AT LOG ID
--
-- KIND/TARGET: "sqlite" and a database path, "redis" and "PORT/PASSWORD"
-- (avalara.redis.client), "store" and "PORT/PASSWORD" (avalara.store.redis).
-- It waits until START_AT (epoch seconds, fractional), signs the event ID
-- under a fixed test secret, runs webhook.handle with an on_event that
-- appends a line to LOG and takes 0.3 s, and prints the status answered.
local socket = require "socket"
local webhook = require "avalara.webhook"

local kind, target, start_at, log, id = arg[1], arg[2], tonumber(arg[3]), arg[4], arg[5]
local SECRET = ("k"):rep(64)

local seen
if kind == "sqlite" then
  seen = assert(webhook.seen.sqlite(target))
else
  local port, password = target:match("^(%d+)/(.*)$")
  local o = { port = tonumber(port), password = password, prefix = "spec:" }
  if kind == "redis" then
    seen = webhook.seen.redis(require("avalara.redis.client").new { port = o.port, password = o.password })
  else
    seen = webhook.seen.redis(require("avalara.store.redis").new(o))
  end
end

local body = ('{"id":"%s","eventType":"HSCodeAssigned","itemId":5,"itemCode":"A","classifications":'
  .. '[{"productCode":"610910","country":"US","systemCode":"HTS"}]}'):format(id)
local ts = os.time()
local headers = { ["X-Avalara-Timestamp"] = tostring(ts), ["X-Avalara-Signature"] = webhook.sign(SECRET, ts, body) }

local wait = start_at - socket.gettime()
if wait > 0 then socket.sleep(wait) end
local status, answer = webhook.handle(body, headers, { secret = SECRET, seen = seen, on_event = function(event)
  local f = assert(io.open(log, "a"))
  f:write(event.id, "\n")
  f:close()
  socket.sleep(0.3)
end })
io.write(status, " ", answer.duplicate and "duplicate" or "", "\n")
