--- Checking the options a function is given: unknown names raise naming the
-- nearest known one (a typo such as `comapny_id` is never ignored in
-- silence), and the small predicates every option check uses.
-- @module avalara.options
local core = require "avalara.core"
local environments = require "avalara.environments"

local M = {}

--- The transport options a client hands to each exchange (as `avalara.core` knows them).
M.TRANSPORT = require("avalara.transport").KEYS

--- Every option `avalara.new` knows.
M.CLIENT = { "account_id", "license_key", "company_id", "environment", "legacy", "emulator_url", "token_url", "issuer",
  "api_base", "scope", "auth_method", "leeway", "store", "on_token", "on_request", "on_warning", "retries",
  "concurrency", "starts_per_poll", "shared_dict", "transport", "sleep", "wait", "token_source", "items_base",
  "items_scope", "gate", "binding" }
for _, k in ipairs(M.TRANSPORT) do M.CLIENT[#M.CLIENT + 1] = k end

--- The name in `known` nearest to `name` (edit distance under 4), or nil.
-- @string name
-- @tparam table known a list of names
-- @treturn string|nil
function M.nearest(name, known)
  local best, best_d = nil, 4
  for _, k in ipairs(known) do
    local prev = {}
    for j = 0, #k do prev[j] = j end
    for i = 1, #name do
      local cur = { [0] = i }
      for j = 1, #k do
        cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (name:byte(i) == k:byte(j) and 0 or 1))
      end
      prev = cur
    end
    if prev[#k] < best_d then best, best_d = k, prev[#k] end
  end
  return best
end

--- Raises `"<where>: unknown option 'x' (did you mean 'y'?)"` for a key of `opts` not in `known`.
-- @string where
-- @tparam table opts
-- @tparam table known a list of names
-- @int[opt=1] level frames above the caller of `check_known` to blame
function M.check_known(where, opts, known, level)
  local set = {}
  for _, k in ipairs(known) do set[k] = true end
  for k in pairs(opts) do
    if not set[k] then
      local near = type(k) == "string" and M.nearest(k, known)
      error(where .. ": unknown option '" .. tostring(k) .. "'" .. (near and " (did you mean '" .. near .. "'?)" or ""),
        (level or 1) + 1)
    end
  end
end

local os_getenv = os and os.getenv -- optional: a sandbox has no os (then no variable is set)

--- An environment variable, nil when unset or empty (or when this Lua state has no `os`).
-- @string name
-- @treturn string|nil
function M.getenv(name)
  local v = os_getenv and os_getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

--- Whether `f` can be called (a function, or a table with `__call`).
-- @param f
-- @treturn boolean
function M.is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return mt ~= nil and type(mt) == "table" and mt.__call ~= nil
end

--- Checks an optional `opts` table with optional non-negative number fields:
-- raises naming `where` and the field; returns `opts` or `{}`.
-- @string where
-- @param opts
-- @tparam[opt] table numbers names of fields that must be non-negative numbers when given
-- @treturn table
function M.check_opts(where, opts, numbers)
  if opts ~= nil and type(opts) ~= "table" then error(where .. ": 'opts' must be a table", 3) end
  opts = opts or {}
  for _, k in ipairs(numbers or {}) do
    if opts[k] ~= nil and (type(opts[k]) ~= "number" or opts[k] < 0) then
      error(where .. ": '" .. k .. "' must be a non-negative number", 3)
    end
  end
  return opts
end

-- A check of `avalara.new`'s options: raises at the caller of `avalara.new`
-- (client(1) -> avalara.new(2) -> its caller(3), seen from `check` one more).
local function check(cond, msg)
  if not cond then error("avalara.new: " .. msg, 4) end
end

--- Checks the options of `avalara.new` (documented there) that need no
-- host (nginx) and no store: raises naming the first bad one, before any request.
-- @tparam[opt] table opts
-- @treturn table the settings: `token_source`, `account_id`, `company_id`, the endpoints
-- (`avalara.environments.resolve`), `auth_method`, `leeway`, `concurrency`, `starts_per_poll`, the hooks, `transport`,
-- `topts` (the transport options)
-- @return the license key (a secret), or nil with a `token_source`
function M.client(opts)
  if opts == nil then opts = {} end
  check(type(opts) == "table", "options must be a table")
  local set = {}
  for _, k in ipairs(M.CLIENT) do set[k] = true end
  for k in pairs(opts) do
    if not set[k] then
      local near = type(k) == "string" and M.nearest(k, M.CLIENT)
      check(false, "unknown option '" .. tostring(k) .. "'" .. (near and " (did you mean '" .. near .. "'?)" or ""))
    end
  end
  local cfg = {}
  local source = opts.token_source
  check(source == nil or (type(source) == "table" and M.is_callable(source.token)),
    "'token_source' must be an object with a token method")
  cfg.token_source = source
  -- A token source brings its own credentials.
  local account = opts.account_id or (not source and M.getenv("AVALARA_ACCOUNT_ID") or nil)
  local key = opts.license_key or (not source and M.getenv("AVALARA_LICENSE_KEY") or nil)
  local company = opts.company_id or M.getenv("AVALARA_COMPANY_ID")
  -- `local` with no credentials at all: the emulator's demo account (as `hscode --env local`)
  if not source and account == nil and key == nil and environments.name(opts) == "local" then
    local demo = environments.DEMO
    account, key, company = demo.account_id, demo.license_key, company or demo.company_id
  end
  check(account ~= nil or source, "'account_id' is required (or set AVALARA_ACCOUNT_ID)")
  check(account == nil or type(account) == "string" or type(account) == "number",
    "'account_id' must be a string or number")
  check(key ~= nil or source, "'license_key' is required (or set AVALARA_LICENSE_KEY)")
  check(key == nil or (type(key) == "string" and key ~= ""), "'license_key' must be a non-empty string")
  -- Optional here: tokens and definitions need no company; the calls that
  -- do (classify, classification, wait, classify_batch) raise without one.
  check(company == nil or type(company) == "string" or type(company) == "number",
    "'company_id' must be a string or number")
  check(company == nil or tostring(company):match("^%d+$"), "'company_id' must be digits")
  cfg.account_id = account and tostring(account)
  cfg.company_id = tonumber(company)

  local ep, why = environments.resolve(opts)
  check(ep, why)
  for k, v in pairs(ep) do cfg[k] = v end

  cfg.auth_method = opts.auth_method or "post"
  check(cfg.auth_method == "post" or cfg.auth_method == "basic", "'auth_method' must be \"post\" or \"basic\"")
  cfg.leeway = opts.leeway or 300
  check(type(cfg.leeway) == "number" and cfg.leeway >= 0, "'leeway' must be a non-negative number")
  cfg.concurrency = opts.concurrency or 16
  check(type(cfg.concurrency) == "number" and cfg.concurrency >= 1, "'concurrency' must be a positive number")
  cfg.starts_per_poll = opts.starts_per_poll -- nil: every call that can start, starts
  check(cfg.starts_per_poll == nil or type(cfg.starts_per_poll) == "number" and cfg.starts_per_poll >= 1,
    "'starts_per_poll' must be a number >= 1")
  check(opts.shared_dict == nil or type(opts.shared_dict) == "string", "'shared_dict' must be a string")
  for _, h in ipairs { "on_token", "on_request", "on_warning", "transport", "sleep", "wait", "gate" } do
    check(opts[h] == nil or M.is_callable(opts[h]), "'" .. h .. "' must be a function")
  end
  cfg.on_token, cfg.on_request, cfg.on_warning = opts.on_token, opts.on_request, opts.on_warning
  cfg.gate = opts.gate
  cfg.transport = opts.transport
  -- which binding of the core runs requests (avalara.transport): "ffi" only where it loads
  check(opts.binding == nil or opts.binding == "ffi" or opts.binding == "classic",
    "'binding' must be \"ffi\" or \"classic\"")
  if opts.binding == "ffi" then
    local ok, no = require("avalara.ffi.cdef").load()
    check(ok, "'binding' \"ffi\" is not available here: " .. tostring(no))
  end
  cfg.binding = opts.binding
  cfg.topts = {}
  for _, k in ipairs(M.TRANSPORT) do cfg.topts[k] = opts[k] end

  -- The core checks the options and the URL policy (plain http only to
  -- loopback, unless allow_http); ask it now, before any request.
  local urls = {}
  for _, name in ipairs { "token_url", "api_base", "items_base", "issuer" } do
    if cfg[name] ~= nil then urls[#urls + 1] = name end
  end
  for _, name in ipairs(urls) do
    -- a URL's bytes go into request lines (a CR or LF would add lines)
    check(not cfg[name]:find("[%z\1-\32\127]"), "'" .. name .. "' must not contain spaces or control characters")
    local probe = setmetatable({ url = cfg[name], transport = opts.transport }, { __index = cfg.topts })
    local ok, err = pcall(core.prepare_request, probe)
    if ok then err:close() else
      for _, k in ipairs(M.TRANSPORT) do
        if tostring(err):find("'" .. k .. "'", 1, true) then
          local w = tostring(err):match("'" .. k .. "' (%(.*%))$")
          check(false, "'" .. k .. "' has a wrong type or value" .. (w and " " .. w or ""))
        end
      end
      local policy = tostring(err):match("'url' (.*)$")
      if not policy then error(err, 0) end -- not about the URL (a memory error): it stays what it is
      check(false, "'" .. name .. "' " .. policy)
    end
  end
  return cfg, key
end

return M
