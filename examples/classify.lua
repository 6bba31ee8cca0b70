-- Classifies one product and waits for its HS code.
--
--   emulator/with -- lua5.4 examples/classify.lua "men's cotton t-shirt" US
--
-- (from the repository root, with LUA_PATH='lua/?.lua;lua/?/init.lua;;' and
-- LUA_CPATH='build/lua5.4/?.so;;'). Credentials default to the emulator's demo
-- account; AVALARA_* variables select another account or environment.
local avalara = require "avalara"
local descriptions = require "avalara.descriptions"

local description, country = arg[1] or "men's cotton t-shirt", arg[2] or "US"

local client = avalara.new{
  environment = os.getenv("AVALARA_ENVIRONMENT") or "local",
  account_id = os.getenv("AVALARA_ACCOUNT_ID") or "2000000001",
  license_key = os.getenv("AVALARA_LICENSE_KEY") or "DEMO-LICENSE-KEY-0001",
  company_id = os.getenv("AVALARA_COMPANY_ID") or 1001,
}

local model, err = client:classify({ itemCode = "EX-1", description = description }, { country = country })
if model then model, err = client:wait(model, { timeout = 30 }) end
if not model then
  io.stderr:write("classification failed: ", tostring(err), "\n")
  os.exit(1)
end
if model.status == "CLASSIFIED" then
  -- the model has the code; its description is in the definitions
  print(model.hsCode, (descriptions.new(client):get(country, model.hsCode)))
else
  print(model.status, model.resolution)
end
