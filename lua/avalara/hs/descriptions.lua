--- Descriptions of HS codes, looked up in the definitions and cached per
-- country and code. A classification carries the code only (no published
-- model has its description), so the `hscode` command and the examples show
-- descriptions through this, the same against the emulator and the service.
--
--    local descriptions = require "avalara.hs.descriptions"
--    local describe = descriptions.new(client)
--    print(describe:get("US", "610910"))   -- one hierarchy request, then cached
--
-- One request (`client:hierarchy`) gives the description of the code and of
-- every code above it, all cached. A code the definitions do not have is
-- remembered too (`nil, err` each time, no new request).
-- (Was `avalara.descriptions`, which still loads this.)
-- @module avalara.hs.descriptions
local core = require "avalara.core"

local M = {}

--- A description cache (returned by `descriptions.new`).
-- @type Descriptions
local Descriptions = {}
Descriptions.__index = Descriptions

--- Makes a cache over a client's definitions.
-- @param client an `avalara.Client`
-- @treturn Descriptions
function M.new(client)
  if type(client) ~= "table" or type(client.hierarchy) ~= "function" then
    error("avalara.descriptions.new: 'client' must be an avalara client", 2)
  end
  return setmetatable({ client = client, known = {}, missing = {} }, Descriptions)
end

local function key(country, code)
  return country:upper() .. "\0" .. code
end

--- The description of `code` in `country`'s tariff.
-- @string country
-- @string code an HS code string
-- @return the description, or nil, err (nil, nil when `code` is nil or empty)
function Descriptions:get(country, code)
  if code == nil or code == "" then return nil end
  if type(country) ~= "string" or type(code) ~= "string" then
    error("descriptions:get: 'country' and 'code' must be strings", 2)
  end
  local k = key(country, code)
  if self.known[k] then return self.known[k] end
  if self.missing[k] then return nil, self.missing[k] end
  return self:learn(country, code, self.client:hierarchy(country, code))
end

--- The description of `code` if it is known already, else nil: never a request.
-- @string country
-- @string code
-- @return the description or nil
function Descriptions:cached(country, code)
  if code == nil or code == "" then return nil end
  return self.known[key(country, code)]
end

--- Whether `code` still has to be looked up (neither known nor known to be missing).
-- @string country
-- @string code
-- @treturn boolean
function Descriptions:unknown(country, code)
  if code == nil or code == "" then return false end
  local k = key(country, code)
  return self.known[k] == nil and self.missing[k] == nil
end

--- Learns the descriptions of a hierarchy answer (`client:hierarchy`'s
-- results, or the decoded page of a request made elsewhere, such as a
-- batch's), and returns the description of `code` as `get` does.
-- @string country
-- @string code
-- @param chain the records (or a page `{value = records}`), or nil
-- @param[opt] err the error when `chain` is nil
-- @return the description, or nil, err (a code the definitions do not have: kind "api",
-- code `HsCodeNotFound`)
function Descriptions:learn(country, code, chain, err)
  local k = key(country, code)
  if type(err) ~= "table" then err = nil end -- hierarchy's second value is the count
  if type(chain) == "table" and chain.value ~= nil then chain = chain.value end
  if type(chain) ~= "table" or #chain == 0 then
    -- Only a definite answer is remembered: a failed request is tried again.
    if type(chain) ~= "table" and err and err.status ~= 404 then return nil, err end
    self.missing[k] = err or core.error { kind = "api", code = "HsCodeNotFound", retryable = false,
      message = "no HS code " .. code .. " in the definitions of " .. country }
    return nil, self.missing[k]
  end
  for _, rec in ipairs(chain) do
    if type(rec) == "table" and type(rec.hsCode) == "string" and rec.hsCode ~= ""
        and type(rec.description) == "string" then
      self.known[key(country, rec.hsCode)] = rec.description
    end
  end
  -- The last record is the code asked for, whatever spelling the service uses.
  self.known[k] = self.known[k] or chain[#chain].description
  return self.known[k]
end

return M
