--- The environments a client can talk to, and the endpoints an
-- environment and a client's options give (docs/api-contracts.md, "Hosts").
-- `local` is the emulator (`emulator_url`). `items_base` is AvaTax's REST
-- API, where the Items API lives, with the `avatax_api` scope.
-- @module avalara.environments
local M = {}

local os_getenv = os and os.getenv -- optional: a sandbox has no os

local function getenv(name)
  local v = os_getenv and os_getenv(name)
  if v ~= "" then return v end
end

--- The known environments by name (what `avalara.environments` is): `production`, `sandbox`, `local`.
M.known = {}
local known = M.known

known.production = { token_url = "https://identity.avalara.com/connect/token",
  api_base = "https://hscode.api.avalara.com", scope = "hs-code-classification",
  legacy_api_base = "https://hscode.avatax.avalara.com", legacy_scope = "avatax_api",
  items_base = "https://rest.avatax.com", items_scope = "avatax_api" }
known.sandbox = { token_url = "https://ai-sbx.avlr.sh/connect/token",
  api_base = "https://hscode.api.sbx.avalara.com", scope = "hs-code-classification",
  legacy_api_base = "https://hscode.avatax.sbx.avalara.com", legacy_scope = "avatax_api",
  items_base = "https://sandbox-rest.avatax.com", items_scope = "avatax_api" }
known["local"] = { scope = "hs-code-classification", items_scope = "avatax_api" }

--- What `local` means when the options say no more, in the library and in `hscode --env local` alike
-- (docs/client.md, "The emulator's demo account"): the emulator's demo account and license key
-- when neither `account_id` nor `license_key` is given (nor `AVALARA_ACCOUNT_ID`, `AVALARA_LICENSE_KEY`,
-- nor a `token_source`), its company with them when no company is given, and the emulator at
-- `emulator_url` when no URL is given (nor `AVALARA_EMULATOR_URL`, nor `token_url` and `api_base`).
-- Also `avalara.environments["local"].demo`.
M.DEMO = { account_id = "2000000001", license_key = "DEMO-LICENSE-KEY-0001", company_id = "1001",
  emulator_url = "http://127.0.0.1:18080" }
known["local"].demo = M.DEMO

local function fail(msg) return nil, msg end

local function bare(url) return (url:gsub("/+$", "")) end

--- The environment `opts` name (`environment`, else `AVALARA_ENVIRONMENT`, else production).
-- @tparam table opts
-- @treturn string
function M.name(opts)
  return opts.environment or getenv("AVALARA_ENVIRONMENT") or "production"
end

--- The endpoints of a client made with `opts` (`environment`, `legacy`,
-- `emulator_url`, `token_url`, `api_base`, `scope`, `items_base`, `items_scope`,
-- each environment variable `AVALARA_ENVIRONMENT`, `AVALARA_EMULATOR_URL` where unset).
-- @tparam table opts
-- @treturn table `{environment, legacy, emulator_url, token_url, api_base, scope, items_base, items_scope}`,
-- or nil and the message of the programming error (the caller raises it)
function M.resolve(opts)
  local name = M.name(opts)
  local env = known[name]
  if env == nil then
    return fail("'environment' must be production, sandbox or local (got " .. tostring(name) .. ")")
  end
  if not (opts.legacy == nil or type(opts.legacy) == "boolean") then return fail("'legacy' must be a boolean") end
  local ep = { environment = name, legacy = opts.legacy == true }
  if ep.legacy and name == "local" then return fail("'legacy' is for production and sandbox only") end
  local token_url, api_base = env.token_url, ep.legacy and env.legacy_api_base or env.api_base
  local scope = ep.legacy and env.legacy_scope or env.scope
  if name == "local" then
    local emu = opts.emulator_url or getenv("AVALARA_EMULATOR_URL")
      or (not (opts.token_url and opts.api_base) and M.DEMO.emulator_url or nil)
    if emu ~= nil then
      if not (type(emu) == "string" and emu:match("^https?://")) then
        return fail("'emulator_url' must be an http(s) URL")
      end
      if emu:find("[%z\1-\32\127]") then return fail("'emulator_url' must not contain spaces or control characters") end
      emu = bare(emu)
      token_url, api_base = emu .. "/connect/token", emu
    end
    ep.emulator_url = emu
  end
  for _, k in ipairs { "token_url", "api_base", "scope", "items_base", "items_scope", "issuer" } do
    if opts[k] ~= nil and type(opts[k]) ~= "string" then return fail("'" .. k .. "' must be a string") end
  end
  -- `issuer`: the token endpoint (and revocation, device) come from its discovery document
  if opts.issuer ~= nil then
    if opts.token_url ~= nil then return fail("give 'issuer' or 'token_url', not both") end
    if not opts.issuer:match("^https?://[^/]") then return fail("'issuer' must be an http(s) URL") end
    ep.issuer = bare(opts.issuer)
    token_url = nil
  end
  ep.token_url = opts.token_url or token_url
  ep.api_base = bare(opts.api_base or api_base or "")
  ep.scope = opts.scope or scope
  if (ep.token_url == nil and ep.issuer == nil) or ep.api_base == "" then
    return fail("environment 'local' needs 'emulator_url' (or AVALARA_EMULATOR_URL, or token_url and api_base)")
  end
  ep.items_base = bare(opts.items_base or env.items_base or (name == "local" and ep.emulator_url) or ep.api_base)
  ep.items_scope = opts.items_scope or env.items_scope or ep.scope
  return ep
end

return M
