--- The options of `avalara.partner.new`, checked (each failure raises naming
-- the option) and resolved: the flow's endpoints, the store, the lock's
-- lease, and the options handed on to the connections' clients.
-- @module avalara.partner.options
local core = require "avalara.core"
local stores = require "avalara.store"
local environments = require "avalara.partner.environments"
local getenv = require("avalara.options").getenv

local M = {}

--- Options handed on to the clients (`p:client`) and to the exchanges.
M.CLIENT_KEYS = { "timeout", "connect_timeout", "cafile", "capath", "proxy", "verify", "user_agent",
  "max_body", "allow_http", "transport", "sleep", "wait", "retries", "on_request", "on_warning", "concurrency" }

local function check(cond, msg, level)
  if not cond then error("avalara.partner.new: " .. msg, (level or 2) + 1) end
end

local function is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end

-- The endpoints and API of the flow and environment: sets `self.urls`, `api_base`, ...
local function endpoints(self, opts)
  self.flow = opts.flow or "2012"
  check(environments.endpoints[self.flow] ~= nil,
    "'flow' must be \"2012\" or \"identity\" (got " .. tostring(self.flow) .. ")", 4)
  local envs = environments.flows[self.flow]
  self.environment = opts.environment or "production"
  local env = envs[self.environment]
  if not env then
    local names = {}
    for name in pairs(envs) do names[#names + 1] = name end
    table.sort(names)
    check(false, "'environment' must be " .. table.concat(names, ", ") .. " for flow " .. self.flow
      .. " (got " .. tostring(self.environment) .. ")", 4)
  end
  local oauth, api = env.oauth, env.api
  if self.environment == "local" then
    local emu = opts.emulator_url or getenv("AVALARA_EMULATOR_URL")
    check(type(emu) == "string" and emu:match("^https?://"),
      "environment 'local' needs 'emulator_url' (an http(s) URL, or set AVALARA_EMULATOR_URL)", 4)
    self.emulator_url = emu:gsub("/+$", "")
    oauth, api = self.emulator_url .. oauth, self.emulator_url
  end
  check(opts.urls == nil or type(opts.urls) == "table", "'urls' must be a table", 4)
  self.urls = {}
  for name, path in pairs(environments.endpoints[self.flow]) do
    local u = opts.urls and opts.urls[name]
    check(u == nil or (type(u) == "string" and u:match("^https?://")), "'urls." .. name .. "' must be an http(s) URL",
      4)
    self.urls[name] = u or (oauth .. path)
  end
  if opts.urls and opts.urls.token and not opts.urls.generate_token and self.flow == "2012" then
    self.urls.generate_token = opts.urls.token:gsub("access_token$", "generate_token")
  end
  self.api_base = opts.api_base or api
  check(self.api_base == nil or (type(self.api_base) == "string" and self.api_base:match("^https?://")),
    "'api_base' must be an http(s) URL", 4)
  self.client_environment = env.client_environment
  -- The core's URL policy (plain http only to loopback, unless allow_http), asked now.
  for _, name in ipairs { "token", "revocation", "generate_token", "authorize" } do
    local probe = { url = self.urls[name], allow_http = opts.allow_http, transport = opts.transport }
    local pok, perr = pcall(core.prepare_request, probe)
    if pok then perr:close() elseif probe.url then
      if tostring(perr) == "not enough memory" then error(perr, 0) end -- a memory error stays one
      check(false, "'urls." .. name .. "' " .. (tostring(perr):match("'url' (.*)$") or tostring(perr)), 4)
    end
  end
end

-- The store of connections and pending authorizations.
local function store_of(opts)
  local store = opts.store
  check(opts.shared_dict == nil or type(opts.shared_dict) == "string", "'shared_dict' must be a string", 4)
  if opts.shared_dict then
    check(store == nil, "give 'store' or 'shared_dict', not both", 4)
    store = require("avalara.openresty").store(opts.shared_dict)
  end
  if store == nil or store == "memory" then store = stores.memory()
  elseif store == "file" then store = stores.file(stores.default_path("data", "connections.db")) end
  check(type(store) == "table", "'store' must be \"memory\", \"file\" or a store table", 4)
  for _, m in ipairs { "get", "set", "cas", "delete", "lock" } do
    check(is_callable(store[m]), "'store' must have get, set, cas, delete and lock (no '" .. m .. "')", 4)
  end
  return store
end

--- Checks the options of `avalara.partner.new` and fills `self` with what they say
-- (`client_id`, `flow`, `environment`, `urls`, `api_base`, `redirect_uri`, `scope`, `auth_method`,
-- `state_ttl`, `lock_ttl`, `on_refresh`, `store`, `prefix`, `client_options`). Raises naming the
-- option (`avalara.partner.new: ...`).
-- @tparam table self the partner
-- @tparam table opts
function M.apply(self, opts)
  check(type(opts) == "table", "options must be a table", 3)
  local id = opts.client_id
  check(id ~= nil, "'client_id' is required", 3)
  check((type(id) == "string" and id ~= "") or type(id) == "number", "'client_id' must be a non-empty string", 3)
  check(opts.client_secret ~= nil, "'client_secret' is required", 3)
  check(type(opts.client_secret) == "string" and opts.client_secret ~= "",
    "'client_secret' must be a non-empty string", 3)
  self.client_id = tostring(id)
  endpoints(self, opts)

  check(opts.redirect_uri == nil or (type(opts.redirect_uri) == "string" and opts.redirect_uri:match("^%a[%w+.-]*:")),
    "'redirect_uri' must be an absolute URI", 3)
  self.redirect_uri = opts.redirect_uri
  check(opts.scope == nil or type(opts.scope) == "string", "'scope' must be a string", 3)
  self.scope = opts.scope or (self.flow == "identity" and "hs-code-classification" or nil)
  self.auth_method = opts.auth_method or "post"
  check(self.auth_method == "post" or self.auth_method == "basic", "'auth_method' must be \"post\" or \"basic\"", 3)
  for _, k in ipairs { "state_ttl", "lock_ttl" } do
    check(opts[k] == nil or (type(opts[k]) == "number" and opts[k] > 0), "'" .. k .. "' must be a positive number", 3)
  end
  self.state_ttl, self.lock_ttl = opts.state_ttl or 600, opts.lock_ttl or 60
  -- The lease outlives the refresh it guards: a lock that lapsed while its
  -- refresh still ran would let another process spend the same refresh token.
  local timeout = type(opts.timeout) == "number" and opts.timeout or 30
  if opts.lock_ttl then
    check(opts.lock_ttl > timeout, "'lock_ttl' (" .. opts.lock_ttl .. " s) must be longer than 'timeout' (" .. timeout
      .. " s): a lock that lapses while its refresh runs lets another process spend the same refresh token", 3)
  else
    self.lock_ttl = math.max(60, timeout + 30)
  end
  check(opts.on_refresh == nil or is_callable(opts.on_refresh), "'on_refresh' must be a function", 3)
  self.on_refresh = opts.on_refresh
  self.store = store_of(opts)
  self.prefix = "avalara:partner:" .. self.client_id .. "@" .. self.urls.token .. ":"
  self.client_options = {}
  for _, k in ipairs(M.CLIENT_KEYS) do self.client_options[k] = opts[k] end
end

return M
