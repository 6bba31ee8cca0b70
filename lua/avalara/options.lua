--- Checking the options a function is given: unknown names raise naming the
-- nearest known one (a typo such as `comapny_id` is never ignored in
-- silence), and the small predicates every option check uses.
-- @module avalara.options
local M = {}

--- The transport options a client hands to each exchange (as `avalara.core` knows them).
M.TRANSPORT = { "timeout", "connect_timeout", "cafile", "capath", "proxy", "verify", "user_agent", "max_body",
  "allow_http" }

--- Every option `avalara.new` knows.
M.CLIENT = { "account_id", "license_key", "company_id", "environment", "legacy", "emulator_url", "token_url",
  "api_base", "scope", "auth_method", "leeway", "store", "on_token", "on_request", "on_warning", "retries",
  "concurrency", "shared_dict", "transport", "sleep", "wait", "token_source", "items_base", "items_scope" }
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

--- An environment variable, nil when unset or empty.
-- @string name
-- @treturn string|nil
function M.getenv(name)
  local v = os.getenv(name)
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

return M
