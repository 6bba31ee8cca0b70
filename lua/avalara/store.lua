--- Token stores for the client (design.md section 5, issue 4 item 2).
--
-- A store keeps token records between calls (and, for the file store,
-- between processes). The interface, which any custom store may implement:
--
--    store:get(key)              -> value | nil      (nil when absent or past its ttl)
--    store:set(key, value, ttl)  -- value: a table of strings/numbers; ttl seconds or nil (no expiry)
--    store:delete(key)
--    store:lock(key)             -> unlock function | nil  (nil: someone else holds it, try later)
--
-- `lock` never blocks: the client waits (yielding when it runs in a
-- coroutine) and retries, which gives single-flight token renewal. Values
-- are token records `{access_token, token_type, scope, expires_at}`; keys
-- never contain secrets.
-- @module avalara.store
local cjson = require "cjson"

local M = {}

local function now() return os.time() end

-- ---------------------------------------------------------------- memory

local Memory = {}
Memory.__index = Memory

--- A store in this Lua state's memory (the default).
-- @treturn table the store
function M.memory()
  return setmetatable({ data = {}, locks = {} }, Memory)
end

--- The value under `key`, or nil when absent or past its ttl.
-- @string key
-- @return the value or nil
function Memory:get(key)
  local e = self.data[key]
  if not e then return nil end
  if e.expires and e.expires <= now() then
    self.data[key] = nil
    return nil
  end
  return e.value
end

--- Stores `value` under `key`.
-- @string key
-- @tparam table value a table of strings and numbers
-- @tparam[opt] number ttl seconds to keep it (nil: no expiry)
function Memory:set(key, value, ttl)
  self.data[key] = { value = value, expires = ttl and now() + ttl or nil }
end

--- Forgets `key`.
-- @string key
function Memory:delete(key)
  self.data[key] = nil
end

--- Takes the lock on `key` without blocking.
-- @string key
-- @return an unlock function, or nil when another caller holds the lock
function Memory:lock(key)
  if self.locks[key] then return nil end
  local token = {}
  self.locks[key] = token
  return function()
    if self.locks[key] == token then self.locks[key] = nil end
  end
end

Memory.__tostring = function() return "avalara.store.memory" end

-- ------------------------------------------------------------------ file

local File = {}
File.__index = File

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function default_path()
  local base = os.getenv("XDG_CACHE_HOME")
  if not base or base == "" then
    local home = os.getenv("HOME")
    base = home and home ~= "" and (home .. "/.cache") or "/tmp"
  end
  return base .. "/avalara-hscode/tokens.json"
end

--- A store in a JSON file readable only by its owner (mode 0600).
-- Opt-in; the `hscode` command uses it so that repeated runs reuse a valid
-- token. The lock is per Lua state (no lock across processes: two
-- processes may each fetch a token, the last write wins).
-- @tparam[opt] string path the file (default `$XDG_CACHE_HOME/avalara-hscode/tokens.json`,
-- else `~/.cache/...`)
-- @treturn table the store
function M.file(path)
  if path ~= nil and type(path) ~= "string" then
    error("avalara.store.file: 'path' must be a string", 2)
  end
  return setmetatable({ path = path or default_path(), locks = {} }, File)
end

function File:_read()
  local f = io.open(self.path, "r")
  if not f then return {} end
  local s = f:read("*a")
  f:close()
  local ok, t = pcall(cjson.decode, s)
  if not ok or type(t) ~= "table" then return {} end
  return t
end

function File:_write(t)
  local dir = self.path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then os.execute("mkdir -p -m 700 " .. shell_quote(dir) .. " 2>/dev/null") end
  local tmp = self.path .. ".tmp" .. tostring(math.random(1, 1e9))
  -- Create it empty, restrict it, and only then write the secrets.
  local f = io.open(tmp, "w")
  if not f then return nil, "cannot write " .. tmp end
  f:close()
  os.execute("chmod 600 " .. shell_quote(tmp))
  f = io.open(tmp, "w")
  if not f then os.remove(tmp); return nil, "cannot write " .. tmp end
  f:write(cjson.encode(t))
  f:close()
  local ok, err = os.rename(tmp, self.path)
  if not ok then os.remove(tmp); return nil, err end
  return true
end

--- As `Memory:get`, read from the file.
function File:get(key)
  local e = self:_read()[key]
  if type(e) ~= "table" then return nil end
  if type(e.expires) == "number" and e.expires <= now() then return nil end
  return e.value
end

--- As `Memory:set`; rewrites the file (mode 0600) through a temporary file and a rename.
-- @return true, or nil, message
function File:set(key, value, ttl)
  local t = self:_read()
  t[key] = { value = value, expires = ttl and now() + ttl or nil }
  -- Drop records past their ttl.
  for k, e in pairs(t) do
    if type(e) ~= "table" or (type(e.expires) == "number" and e.expires <= now()) then t[k] = nil end
  end
  return self:_write(t)
end

--- As `Memory:delete`.
function File:delete(key)
  local t = self:_read()
  if t[key] ~= nil then
    t[key] = nil
    return self:_write(t)
  end
  return true
end

File.lock = Memory.lock
File.__tostring = function(self) return "avalara.store.file(" .. self.path .. ")" end

return M
