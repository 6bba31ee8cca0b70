--- Where each partner flow's endpoints are, per environment (docs/api-contracts.md):
-- `oauth` (the folder of the 2012 service, or of Identity's `connect/`
-- endpoints) and `api` (the HS code API the connection's clients call: the
-- AvaTax hosts for 2012 tokens, the Identity ones otherwise). `local` is the
-- emulator (`emulator_url`). Reached as `avalara.partner.environments`.
-- @module avalara.partner.environments
local M = {}

--- The environments of each flow (`M.flows["2012"].production`, ...).
M.flows = {
  ["2012"] = {
    development = { oauth = "https://development.avalara.net/oauth/", api = "https://hscode.avatax.sbx.avalara.com",
      client_environment = "sandbox" },
    production = { oauth = "https://avatax.avalara.net/oauth/", api = "https://hscode.avatax.avalara.com",
      client_environment = "production" },
    ["local"] = { oauth = "/oauth/", client_environment = "local" },
  },
  identity = {
    production = { oauth = "https://identity.avalara.com/connect/", api = "https://hscode.api.avalara.com",
      client_environment = "production" },
    sandbox = { oauth = "https://ai-sbx.avlr.sh/connect/", api = "https://hscode.api.sbx.avalara.com",
      client_environment = "sandbox" },
    ["local"] = { oauth = "/connect/", client_environment = "local" },
  },
}

--- The endpoint names of each flow, under its `oauth` folder.
M.endpoints = {
  ["2012"] = { authorize = "authorize", token = "access_token", revocation = "revoke",
    generate_token = "generate_token" },
  identity = { authorize = "authorize", token = "token", revocation = "revocation" },
}

return M
