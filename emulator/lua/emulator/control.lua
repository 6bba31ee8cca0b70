-- The control API under /_emulator/ for tests and demos: reset, config,
-- counters, faults, token expiry and the test CA. Loopback clients only.
local util = require "emulator.util"
local conf = require "emulator.conf"
local counters = require "emulator.counters"
local tokens = require "emulator.tokens"
local faults = require "emulator.faults"
local classification = require "emulator.classification"
local catalog = require "emulator.catalog"
local jobs = require "emulator.jobs"
local webhooks = require "emulator.webhooks"
local init = require "emulator.init"

local M = {}

local function ok(extra)
  local body = { ok = true }
  for k, v in pairs(extra or {}) do body[k] = v end
  return util.json(200, body)
end

local function bad(message)
  return util.json(400, { ok = false, error = message })
end

local function json_body()
  local body = util.json_decode(util.body())
  if type(body) ~= "table" then return nil end
  return body
end

function M.reset_all()
  conf.reset()
  counters.reset()
  tokens.reset()
  faults.clear()
  classification.reset()
  catalog.reset()
  jobs.reset()
end

local handlers = {}

handlers["POST /_emulator/reset"] = function()
  M.reset_all()
  return ok()
end

handlers["GET /_emulator/config"] = function()
  return util.json(200, conf.get())
end

handlers["POST /_emulator/config"] = function()
  local body = json_body()
  if not body then return bad("body must be a JSON object") end
  local cfg, err = conf.set(body)
  if not cfg then return bad(err) end
  return util.json(200, cfg)
end

handlers["GET /_emulator/counters"] = function()
  return util.json(200, counters.snapshot())
end

handlers["GET /_emulator/faults"] = function()
  local list = faults.list()
  if #list == 0 then return util.send(200, "application/json", '{"faults":[]}') end
  return util.json(200, { faults = list })
end

handlers["POST /_emulator/faults"] = function()
  local body = json_body()
  if not body then return bad("body must be a JSON object") end
  local spec, err = faults.add(body)
  if not spec then return bad(err) end
  return ok({ fault = spec })
end

handlers["DELETE /_emulator/faults"] = function()
  faults.clear()
  return ok()
end

handlers["GET /_emulator/webhooks"] = function()
  local list = webhooks.deliveries()
  if #list == 0 then return util.send(200, "application/json", '{"deliveries":[]}') end
  return util.json(200, { deliveries = list })
end

handlers["POST /_emulator/tokens/expire"] = function()
  tokens.expire_all()
  return ok()
end

handlers["GET /_emulator/ca.pem"] = function()
  return util.send(200, "application/x-pem-file", init.ca_pem)
end

handlers["GET /_emulator/health"] = function()
  return util.send(200, "text/plain", "ok " .. (init.paths.instance or "") .. "\n")
end

function M.handle()
  local addr = ngx.var.remote_addr
  if addr ~= "127.0.0.1" and addr ~= "::1" then
    return util.json(403, { ok = false, error = "the control API is for loopback clients only" })
  end
  local h = handlers[ngx.req.get_method() .. " " .. ngx.var.uri]
  if not h then return util.json(404, { ok = false, error = "no such control route" }) end
  return h()
end

return M
