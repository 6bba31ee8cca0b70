-- Browses the HS nomenclature: the sections, the chain above a code, and
-- the codes under a heading.
--
--   emulator/with -- lua5.4 examples/lookup.lua 610910 US
local avalara = require "avalara"

local code, country = arg[1] or "610910", arg[2] or "US"

-- Definitions need a token but no company.
local client = avalara.new{
  environment = os.getenv("AVALARA_ENVIRONMENT") or "local",
  account_id = os.getenv("AVALARA_ACCOUNT_ID") or "2000000001",
  license_key = os.getenv("AVALARA_LICENSE_KEY") or "DEMO-LICENSE-KEY-0001",
}

local sections = assert(client:sections())
print(("%d sections"):format(#sections))

local chain, err = client:hierarchy(country, code)
if not chain then
  io.stderr:write("lookup failed: ", tostring(err), "\n")
  os.exit(1)
end
for depth, entry in ipairs(chain) do
  print(("%s%s  %s"):format(("  "):rep(depth - 1), entry.hsCode, entry.description))
end

local children = assert(client:hs_codes(country, code:sub(1, 4)))
print(("%d codes under heading %s"):format(#children, code:sub(1, 4)))
