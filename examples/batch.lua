-- Classifies several products at once (16 in flight) and prints a table;
-- one failed item never loses the others.
--
--   emulator/with -- lua5.4 examples/batch.lua
local avalara = require "avalara"
local descriptions = require "avalara.descriptions"

local client = avalara.new{
  environment = os.getenv("AVALARA_ENVIRONMENT") or "local",
  account_id = os.getenv("AVALARA_ACCOUNT_ID") or "2000000001",
  license_key = os.getenv("AVALARA_LICENSE_KEY") or "DEMO-LICENSE-KEY-0001",
  company_id = os.getenv("AVALARA_COMPANY_ID") or 1001,
}

local items = {
  { itemCode = "TS-1", description = "men's cotton t-shirt" },
  { itemCode = "MUG-2", description = "porcelain coffee mug" },
  { itemCode = "BK-3", description = "bicycle, not motorised" },
  { itemCode = "OIL-4", description = "extra virgin olive oil, 1 litre bottle" },
  { itemCode = "WT-5", description = "stainless steel wrist watch", countryOfDestination = "GB" },
}

local results, summary = client:classify_batch(items, {
  country = "US", concurrency = 16,
  on_progress = function(done, total) io.stderr:write(("\r%d/%d"):format(done, total)) end,
})
io.stderr:write("\n")

-- Descriptions come from the definitions, one lookup per country and code.
local describe = descriptions.new(client)
for i, item in ipairs(items) do
  local r = results[i]
  if avalara.core.is_error(r) then
    print(item.itemCode, "FAILED", r.kind, r.message)
  else
    local text = r.hsCode and describe:get(r.countryOfDestination, r.hsCode) or r.resolution
    print(item.itemCode, r.status, r.hsCode or "-", text or "")
  end
end
print(("%d ok, %d failed"):format(summary.ok, summary.failed))
os.exit(summary.failed == 0 and 0 or 1)
