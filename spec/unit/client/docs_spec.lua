-- Every public name of the Lua layer has an LDoc comment (`---`) where it is
-- defined, so `make docs` documents the whole API (like luv's docs check).
local MODULES = {
  { name = "avalara", file = "lua/avalara/init.lua", owners = { M = true } },
  { name = "avalara.client", file = "lua/avalara/client.lua", owners = { M = true, Client = true } },
  { name = "avalara.token.token", file = "lua/avalara/token/token.lua", owners = { M = true, Token = true } },
  { name = "avalara.token.source", file = "lua/avalara/token/source.lua", owners = { M = true, Source = true } },
  { name = "avalara.token.cached", file = "lua/avalara/token/cached.lua", owners = { M = true, Cached = true } },
  { name = "avalara.transport", file = "lua/avalara/transport/init.lua", owners = { M = true, Transport = true } },
  { name = "avalara.transport.lua", file = "lua/avalara/transport/lua.lua", owners = { M = true } },
  { name = "avalara.options", file = "lua/avalara/options.lua", owners = { M = true } },
  { name = "avalara.environments", file = "lua/avalara/environments.lua", owners = { M = true } },
  { name = "avalara.error", file = "lua/avalara/error.lua", owners = { M = true } },
  { name = "avalara.hs", file = "lua/avalara/hs/init.lua", owners = { M = true, Hs = true } },
  { name = "avalara.store", file = "lua/avalara/store.lua", owners = { M = true } },
  { name = "avalara.store.memory", file = "lua/avalara/store/memory.lua", owners = { M = true, Memory = true } },
  { name = "avalara.store.file", file = "lua/avalara/store/file.lua", owners = { M = true, File = true } },
  { name = "avalara.store.holder", file = "lua/avalara/store/holder.lua", owners = { M = true } },
  { name = "avalara.partner", file = "lua/avalara/partner/init.lua", owners = { M = true, Partner = true } },
  { name = "avalara.partner.connection", file = "lua/avalara/partner/connection.lua",
    owners = { M = true, Source = true } },
  { name = "avalara.partner.error", file = "lua/avalara/partner/error.lua", owners = { M = true } },
  { name = "avalara.partner.options", file = "lua/avalara/partner/options.lua", owners = { M = true } },
  { name = "avalara.partner.callback", file = "lua/avalara/partner/callback.lua", owners = { M = true } },
  { name = "avalara.partner.environments", file = "lua/avalara/partner/environments.lua", owners = { M = true } },
  { name = "avalara.partner.records", file = "lua/avalara/partner/records.lua", owners = { M = true } },
  { name = "avalara.cli.partner", file = "lua/avalara/cli/partner.lua", owners = { M = true } },
  { name = "avalara.cli.connect", file = "lua/avalara/cli/connect.lua", owners = { M = true } },
  { name = "avalara.cli.connections", file = "lua/avalara/cli/connections.lua", owners = { M = true } },
  { name = "avalara.cli.disconnect", file = "lua/avalara/cli/disconnect.lua", owners = { M = true } },
  { name = "avalara.retry", file = "lua/avalara/retry.lua", owners = { M = true } },
  { name = "avalara.paths", file = "lua/avalara/paths.lua", owners = { M = true } },
  { name = "avalara.hs.item", file = "lua/avalara/hs/item.lua", owners = { M = true } },
  { name = "avalara.hs.tariff", file = "lua/avalara/hs/tariff.lua", owners = { M = true } },
  { name = "avalara.paging", file = "lua/avalara/paging.lua", owners = { M = true } },
  { name = "avalara.items", file = "lua/avalara/items/init.lua", owners = { M = true, Items = true } },
  { name = "avalara.items.args", file = "lua/avalara/items/args.lua", owners = { M = true } },
  { name = "avalara.items.model", file = "lua/avalara/items/model.lua", owners = { M = true } },
  { name = "avalara.items.api", file = "lua/avalara/items/api.lua", owners = { M = true } },
  { name = "avalara.items.items", file = "lua/avalara/items/items.lua", owners = { M = true } },
  { name = "avalara.items.classification", file = "lua/avalara/items/classification.lua", owners = { M = true } },
  { name = "avalara.items.premium", file = "lua/avalara/items/premium.lua", owners = { M = true } },
  { name = "avalara.items.registrations", file = "lua/avalara/items/registrations.lua", owners = { M = true } },
  { name = "avalara.items.catalog", file = "lua/avalara/items/catalog.lua", owners = { M = true } },
  { name = "avalara.webhook", file = "lua/avalara/webhook/init.lua", owners = { M = true } },
  { name = "avalara.webhook.seen", file = "lua/avalara/webhook/seen.lua", owners = { M = true } },
  { name = "avalara.cli.items", file = "lua/avalara/cli/items.lua", owners = { M = true } },
  { name = "avalara.hs.descriptions", file = "lua/avalara/hs/descriptions.lua", owners = { M = true, Descriptions = true } },
  { name = "avalara.cli", file = "lua/avalara/cli.lua", owners = { M = true } },
  { name = "avalara.batch", file = "lua/avalara/batch/init.lua", owners = { M = true, Service = true } },
  { name = "avalara.batch.journal", file = "lua/avalara/batch/journal.lua", owners = { M = true, Sqlite = true } },
  { name = "avalara.batch.memory", file = "lua/avalara/batch/memory.lua", owners = { M = true, Memory = true } },
  { name = "avalara.batch.plan", file = "lua/avalara/batch/plan.lua", owners = { M = true } },
  { name = "avalara.batch.pipeline", file = "lua/avalara/batch/pipeline.lua", owners = { M = true } },
  { name = "avalara.batch.answers", file = "lua/avalara/batch/answers.lua", owners = { M = true } },
  { name = "avalara.batch.window", file = "lua/avalara/batch/window.lua", owners = { M = true } },
  { name = "avalara.batch.result", file = "lua/avalara/batch/result.lua", owners = { M = true } },
  { name = "avalara.batch.queue", file = "lua/avalara/batch/queue.lua", owners = { M = true, Fifo = true, Heap = true } },
  { name = "avalara.transport.driver", file = "lua/avalara/transport/driver.lua", owners = { M = true } },
  { name = "avalara.async", file = "lua/avalara/async/init.lua", owners = { M = true, Async = true, Handle = true } },
  { name = "avalara.digest", file = "lua/avalara/digest.lua", owners = { M = true } },
  { name = "avalara.country", file = "lua/avalara/country.lua", owners = { M = true } },
  { name = "avalara.cli.common", file = "lua/avalara/cli/common.lua", owners = { M = true } },
  { name = "avalara.csv", file = "lua/avalara/csv.lua", owners = { M = true } },
  { name = "avalara.cli.input", file = "lua/avalara/cli/input.lua", owners = { M = true, Input = true } },
  { name = "avalara.cli.output", file = "lua/avalara/cli/output.lua", owners = { M = true } },
  { name = "avalara.cli.progress", file = "lua/avalara/cli/progress.lua", owners = { M = true } },
  { name = "avalara.cli.signals", file = "lua/avalara/cli/signals.lua", owners = { M = true } },
  { name = "avalara.cli.classify", file = "lua/avalara/cli/classify.lua", owners = { M = true } },
  { name = "avalara.cli.batch", file = "lua/avalara/cli/batch.lua", owners = { M = true } },
  { name = "avalara.cli.lookup", file = "lua/avalara/cli/lookup.lua", owners = { M = true } },
  { name = "avalara.cli.get", file = "lua/avalara/cli/get.lua", owners = { M = true } },
  { name = "avalara.cli.token", file = "lua/avalara/cli/token.lua", owners = { M = true } },
  { name = "avalara.openresty", file = "lua/avalara/openresty.lua", owners = { M = true } },
  { name = "avalara.transport.nginx", file = "lua/avalara/transport/nginx.lua", owners = { M = true } },
  { name = "avalara.transport.cosocket", file = "lua/avalara/transport/cosocket.lua", owners = { M = true } },
  { name = "avalara.transport.subrequest", file = "lua/avalara/transport/subrequest.lua", owners = { M = true } },
  { name = "avalara.store.shared_dict", file = "lua/avalara/store/shared_dict.lua", owners = { M = true } },
  { name = "avalara.resp.protocol", file = "lua/avalara/resp/protocol.lua", owners = { M = true } },
  { name = "avalara.resp.client", file = "lua/avalara/resp/client.lua", owners = { M = true, Client = true } },
  { name = "avalara.store.redis", file = "lua/avalara/store/redis.lua", owners = { M = true, Store = true } },
  { name = "avalara.store.failover", file = "lua/avalara/store/failover.lua",
    owners = { M = true, Breaker = true, Failover = true } },
  { name = "avalara.fleet", file = "lua/avalara/fleet/init.lua", owners = { M = true, Fleet = true } },
  { name = "avalara.fleet.rate", file = "lua/avalara/fleet/rate.lua", owners = { M = true, Budget = true } },
  { name = "avalara.fleet.cache", file = "lua/avalara/fleet/cache.lua", owners = { M = true, Cache = true } },
}

local function lines_of(path)
  local t = {}
  for line in io.lines(path) do t[#t + 1] = line end
  return t
end

-- The public names of a table: not starting with "_", not metamethods.
local function public(t, out)
  for k in pairs(t) do
    if type(k) == "string" and not k:match("^_") then out[k] = true end
  end
  return out
end

-- Whether the comment block right above line i starts with `---`.
local function has_doc(lines, i)
  local j = i - 1
  while j > 0 and lines[j]:match("^%-%-") and not lines[j]:match("^%-%-%-") do j = j - 1 end
  return j > 0 and lines[j]:match("^%-%-%-") ~= nil
end

-- Where `name` is defined in the source (by any of the owner tables), and
-- whether it is documented there, or is an alias of something documented
-- (`File.lock = Memory.lock`, `M.Client = Client` with `--- @type Client` above `local Client`).
local function documented(lines, owners, name)
  for i, line in ipairs(lines) do
    local owner = line:match("^function ([%w_]+)[.:]" .. name .. "%(")
      or line:match("^([%w_]+)%." .. name .. " = ")
    if owner and owners[owner] then
      if has_doc(lines, i) then return true, i end
      local target = line:match("= ([%w_]+%.[%w_]+)$")
      if target then return documented(lines, owners, target:match("%.(.*)$")) end
      local localname = line:match("= ([%w_]+)$")
      for k, l in ipairs(localname and lines or {}) do
        if l:match("^local " .. localname .. " = ") then return has_doc(lines, k), i end
      end
      return false, i
    end
  end
  return false, nil
end

local function exports(mod)
  local m = require(mod.name)
  local names = public(m, {})
  if mod.name == "avalara" then
    names.core, names.paths, names.retry, names.store = nil, nil, nil, nil -- submodules, checked on their own
    names.item, names.definitions, names.partner, names.items = nil, nil, nil, nil
  elseif mod.name == "avalara.client" then
    public(m.Client, names)
    -- the flat aliases of the services, documented where their methods are
    for _, svc in ipairs(m.services) do
      for k in pairs(svc.aliases or {}) do names[k] = nil end
    end
    -- the Items flow's methods (flat names kept) are documented in avalara.items
    for k in pairs(require("avalara.items").Client or {}) do names[k] = nil end
  elseif mod.name == "avalara.items" then
    -- the service object's methods are the documented functions of avalara.items.*
    public(getmetatable(m.new({})).__index, names)
    for k in pairs(m.methods) do names[k] = nil end
  elseif mod.name == "avalara.async" then
    public(m.Async, names)
  elseif mod.name == "avalara.transport" then
    public(m.Transport, names)
  elseif mod.name == "avalara.hs" then
    public(m.Hs, names)
  elseif mod.name == "avalara.token.token" then
    public(m.Token, names)
  elseif mod.name == "avalara.token.source" then
    public(m.Source, names)
  elseif mod.name == "avalara.token.cached" then
    public(m.Cached, names)
  elseif mod.name == "avalara.hs.descriptions" then
    public(getmetatable(m.new({ hierarchy = function() end })).__index, names)
  elseif mod.name == "avalara.batch.memory" then
    public(getmetatable(m.new()).__index, names)
  elseif mod.name == "avalara.batch.queue" then
    public(getmetatable(m.fifo()).__index, names)
    public(getmetatable(m.heap()).__index, names)
  elseif mod.name == "avalara.batch" then
    public(getmetatable(m.new({})).__index, names)
  elseif mod.name == "avalara.cli.input" then
    local f = io.open("spec/unit/cli/csv_spec.lua")
    f:close()
    public(getmetatable(assert(m.open("spec/unit/cli/csv_spec.lua"))).__index, names)
  elseif mod.name == "avalara.store.memory" then
    public(getmetatable(m.new()).__index, names)
  elseif mod.name == "avalara.store.file" then
    public(getmetatable(m.open("/nonexistent/x")).__index, names)
  elseif mod.name == "avalara.partner" then
    public(m.Partner, names)
  elseif mod.name == "avalara.partner.connection" then
    public(getmetatable(m.source({}, "x")).__index, names)
  elseif mod.name == "avalara.resp.client" or mod.name == "avalara.store.redis" then
    public(getmetatable(m.new()).__index, names)
  elseif mod.name == "avalara.store.failover" then
    local breaker = m.breaker {}
    public(getmetatable(breaker).__index, names)
    public(getmetatable(m.new({}, {}, breaker)).__index, names)
  elseif mod.name == "avalara.fleet" then
    public(m.FleetClient, names)
  elseif mod.name == "avalara.fleet.rate" or mod.name == "avalara.fleet.cache" then
    public(getmetatable(m.new({}, "k", { requests = 1 }, {})).__index, names)
  end
  return names
end

describe("LDoc coverage", function()
  for _, mod in ipairs(MODULES) do
    it("documents every public name of " .. mod.name, function()
      local lines = lines_of(mod.file)
      local missing = {}
      for name in pairs(exports(mod)) do
        local ok, at = documented(lines, mod.owners, name)
        if not ok then missing[#missing + 1] = name .. (at and (" (line " .. at .. ")") or " (definition not found)") end
      end
      table.sort(missing)
      assert.same({}, missing)
    end)
  end

  it("finds an undocumented function (the check can fail)", function()
    local lines = { "local M = {}", "", "function M.plain() end", "--- Documented.", "function M.fine() end" }
    assert.is_false((documented(lines, { M = true }, "plain")))
    assert.is_true((documented(lines, { M = true }, "fine")))
  end)
end)
