-- Default configuration of the local Avalara emulator. `emulator/run --config
-- FILE` replaces this file with another Lua file returning the same shape;
-- `POST /_emulator/config` overrides top-level keys at run time and
-- `POST /_emulator/reset` goes back to what this file says.
--
-- The demo accounts below are a public contract (README, demo, acceptance
-- checks): keep them.
return {
  -- AvaTax accounts: client_id = account ID, client_secret = license key.
  -- `quota` (sandbox) = number of classification creates allowed; absent = none.
  accounts = {
    ["2000000001"] = {
      license_key = "DEMO-LICENSE-KEY-0001",
      companies = { 1001 },
    },
    ["2000000002"] = {
      license_key = "DEMO-SANDBOX-KEY-0002",
      companies = { 1002 },
      quota = 100,
    },
  },

  -- Redirect URIs accepted for Identity's authorization_code grant (a
  -- loopback http://127.0.0.1/... one on any port too, RFC 8252 section 7.3).
  redirect_uris = { "http://127.0.0.1/callback" },

  -- 2012 OAuth partner clients. An authorization (and generate_token)
  -- grants CompanyUser access to `company` of `account` only.
  partners = {
    ["demo-partner"] = {
      secret = "demo-partner-secret",
      redirect_uris = { "http://127.0.0.1/callback" },
      account = "2000000001",
      company = 1001,
    },
  },

  -- Scopes Identity grants, the scope granted when none is asked for, and
  -- the scopes the classification and definitions routes accept (the 2012
  -- service's tokens carry CompanyUser).
  identity_scopes = { "hs-code-classification", "avatax_api", "profile" },
  default_scope = "hs-code-classification",
  api_scopes = { "hs-code-classification", "avatax_api", "CompanyUser" },

  token_ttl = 3600,            -- seconds an Identity access token lives
  refresh_token_ttl = 2592000, -- seconds an unused Identity refresh token lives
  code_ttl = 300,              -- seconds an authorization code lives
  -- The status of `invalid_client` at /connect/token and /connect/revocation:
  -- 400 as IdentityServer answers (no WWW-Authenticate), or 401 as
  -- OpenID-certified servers do (with `WWW-Authenticate: Basic` after Basic).
  invalid_client_status = 400,
  -- Cache-Control max-age (seconds) of the discovery document; false = none,
  -- as IdentityServer by default.
  discovery_max_age = false,
  oauth2012_token_ttl = false, -- seconds a 2012 access token lives; false = forever
  oauth2012_expires_in = "9999-12-31T23:59:59.9970000",

  classification_delay = 0.5,  -- seconds a classification stays PENDING
  latency_ms = 0,              -- added to every non-control response
  rate_limit = false,          -- or { requests = N, window = seconds }, per account on API routes
  quotas = {},                 -- per-account quota overrides: { ["2000000002"] = 5 }, false = none
  legacy_sample_body = false,  -- 2012 success body = the seed's sample, verbatim

  -- Validation limits of the classification model (the 2019 ItemModel's
  -- maxLength: itemCode 255, description 255, itemGroup 2000).
  max_item_code_length = 255,
  max_description_length = 255,
  max_item_group_length = 2000,

  -- The AvaTax Items routes (items, HS classification flow, item
  -- classifications, webhook registrations, their definitions) accept
  -- these scopes: AvaTax's `avatax_api` and the 2012 tokens' CompanyUser,
  -- not `hs-code-classification` (a client needing both APIs gets a token
  -- for each scope).
  items_scopes = { "avatax_api", "CompanyUser" },
  items_max_item_code_length = 50, -- ItemModel.itemCode (AvaTax v2, OA21 maxLength)
  items_max_per_request = 500,     -- items of a create, initiate or verify request ("at most 500")
  hscode_sla_hours = 24,           -- what $get-sla answers (slaInHours)

  -- Webhook deliveries (HSCodeAssigned): attempts in all, the delay before
  -- the first retry in seconds (doubling after each), and the time limit of
  -- one attempt in seconds.
  webhook_attempts = 5,
  webhook_retry_delay = 1,
  webhook_timeout = 5,

  -- true adds `hsCodeDescription` (the matched code's description) to
  -- classified models, for demos. No published model has it, so clients
  -- must not rely on it: off by default.
  demo_extras = false,

  -- true: the customer refuses every authorization: /oauth/authorize and
  -- /connect/authorize redirect with error=access_denied (and the state).
  deny_authorization = false,

  -- RFC 8628 device authorization (POST /connect/deviceauthorization, GET|POST /device)
  device_clients = { "hscode-cli" }, -- public clients: client_id alone, no secret
  device_code_ttl = 300,             -- seconds a device code lives (expires_in)
  device_interval = 5,               -- seconds between polls (interval); faster gets slow_down
  device_slow_down = 0,              -- the first N polls (since the reset) get slow_down whatever their pace
}
