-- Browses the HS nomenclature: the sections, the chain above a code, the
-- codes under its heading (every page), and a section's chapters, fetched
-- page by page as the loop goes.
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

local sections, count = assert(client:sections())
print(("%d sections, %s to %s"):format(count, sections[1].hsCode, sections[#sections].hsCode))

-- The chain starts at the root record, then chapter, heading, ...; records
-- without a code (the root, branch records) are left out here.
local chain, err = client:hierarchy(country, code)
if not chain then
  io.stderr:write("lookup failed: ", tostring(err), "\n")
  os.exit(1)
end
for depth, entry in ipairs(chain) do
  if entry.hsCode ~= "" then print(("%s%s  %s"):format(("  "):rep(depth - 2), entry.hsCode, entry.description)) end
end

-- HS codes are strings ("0101", not 101); `top` is the page size.
local children, total = assert(client:hs_codes(country, code:sub(1, 4), { top = 2 }))
print(("%d of %d codes under heading %s"):format(#children, total, code:sub(1, 4)))

local section = client:each_hs_code(country, "XI")
for rec in section do
  if rec.hsCode == "61" then print(("section XI has chapter %s: %s"):format(rec.hsCode, rec.description)) end
end
if section.err then error(tostring(section.err)) end -- a failure ends the loop: the iterator keeps it
