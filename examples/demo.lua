-- Classifies the products of a CSV file with the C core (avalara.core)
-- against the local emulator and prints a table of codes and descriptions.
--
--   AVALARA_EMULATOR_URL=http://127.0.0.1:18080 lua5.4 examples/demo.lua [products.csv]
--
-- (`make demo` starts the emulator and runs this with the right paths.)
local core = require "avalara.core"

local base = os.getenv("AVALARA_EMULATOR_URL") or "http://127.0.0.1:18080"
local company = os.getenv("AVALARA_COMPANY_ID") or "1001"
local csv_path = arg[1] or "examples/products.csv"

-- 1. A token from the Identity endpoint (client_credentials, post auth).
local token = assert(core.client_credentials{
  token_url = base .. "/connect/token",
  client_id = os.getenv("AVALARA_ACCOUNT_ID") or "2000000001",
  client_secret = os.getenv("AVALARA_LICENSE_KEY") or "DEMO-LICENSE-KEY-0001",
  scope = "hs-code-classification",
})
print(tostring(token))

-- 2. Read "itemCode,description" rows (no quoted commas in the sample).
local items = {}
for line in assert(io.open(csv_path)):lines() do
  local code, description = line:match("^([^,]+),(.+)$")
  if code and code ~= "itemCode" then
    items[#items + 1] = { itemCode = code, description = description }
  end
end

-- 3. Create every classification at once on the multi handle, then poll.
local create_url = base .. "/api/v2/companies/" .. company .. "/classifications/hs"
local creates = {}
for i, item in ipairs(items) do
  creates[i] = { method = "POST", url = create_url, token = token,
                 body = { countryOfDestination = "US", item = item } }
end
local created = core.request_many(creates, { concurrency = 8 })

local function poll(id)
  for _ = 1, 50 do
    local status, model = core.request{ method = "GET", url = create_url .. "/" .. id, token = token }
    if not status then return nil, model end
    if model.status ~= "PENDING" then return model end
    os.execute("sleep 0.2")
  end
  return nil, "still PENDING"
end

print(("%-8s %-32s %-10s %s"):format("item", "description", "hs code", "matched description"))
local failed = 0
for i, item in ipairs(items) do
  local r = created[i]
  local model, err
  if r.err then err = r.err else model, err = poll(r.body.id) end
  if model then
    local text = model.hsCodeDescription or model.resolution or ""
    print(("%-8s %-32s %-10s %s"):format(item.itemCode, item.description:sub(1, 32),
      model.hsCode or model.status, text:sub(1, 60)))
  else
    failed = failed + 1
    print(("%-8s %-32s %-10s %s"):format(item.itemCode, item.description:sub(1, 32), "ERROR", tostring(err)))
  end
end
token:close()
print(("%d items, %d classified, %d failed"):format(#items, #items - failed, failed))
os.exit(failed == 0 and 0 or 1)
