--- What the `hscode` partner commands share (`connect`, `connections`,
-- `disconnect`, and `--connection ID` on the others): the partner the
-- options and environment describe, and the user's connection store.
--
-- - `--client-id` (`AVALARA_CLIENT_ID`), `--client-secret` (`AVALARA_CLIENT_SECRET`):
--   the partner registration; with `--env local` and neither, the emulator's
--   demo partner (`demo-partner`, or the demo account for `--flow identity`)
-- - `--flow` (`AVALARA_FLOW`): "2012" (default) or "identity"
-- - `--env` (`AVALARA_ENVIRONMENT`): as for the other commands; for the 2012
--   flow "sandbox" means its "development" service
-- - connections are kept in `$XDG_DATA_HOME/avalara-hscode/connections.db`
--   (else `~/.local/share/...`), mode 0600: they hold refresh tokens
-- @module avalara.cli.partner
local partner = require "avalara.partner"

local M = {}

--- The emulator's demo partners, used with `--env local` when no client id and secret are given.
M.DEMO = { ["2012"] = { id = "demo-partner", secret = "demo-partner-secret" },
  identity = { id = "2000000001", secret = "DEMO-LICENSE-KEY-0001" } }

--- The store of the user's connections (`sys.partner_store()` when given, for specs).
-- @tparam table sys
-- @tparam table cli the helpers of `avalara.cli` (`file_store`)
-- @treturn table the store
function M.store(sys, cli)
  if sys.partner_store then return sys.partner_store() end
  return cli.file_store("data", "connections.db")
end

--- The partner the options and environment describe.
-- @tparam table sys the command's system table
-- @tparam table opts the parsed options
-- @tparam table cli the helpers of `avalara.cli` (`fail`, `EXIT`, `getenv`, ...)
-- @tparam[opt] table extra more `avalara.partner.new` options (`redirect_uri`, `on_request`)
-- @treturn table the partner
function M.partner(sys, opts, cli, extra)
  local EXIT = cli.EXIT
  local flow = opts.flow or cli.getenv(sys, "AVALARA_FLOW") or "2012"
  if flow ~= "2012" and flow ~= "identity" then
    cli.fail(opts.flow and EXIT.usage or EXIT.config, "unknown flow '" .. flow .. "' (2012 or identity)")
  end
  local environment = opts.env or cli.getenv(sys, "AVALARA_ENVIRONMENT") or "production"
  if flow == "2012" and environment == "sandbox" then environment = "development" end
  if not partner.environments[flow][environment] then
    cli.fail(opts.env and EXIT.usage or EXIT.config, "unknown environment '" .. environment .. "' for the "
      .. flow .. " flow")
  end
  local id = opts.client_id or cli.getenv(sys, "AVALARA_CLIENT_ID")
  local secret = opts.client_secret or cli.getenv(sys, "AVALARA_CLIENT_SECRET")
  if environment == "local" and not id and not secret then id, secret = M.DEMO[flow].id, M.DEMO[flow].secret end
  if not id then cli.fail(EXIT.config, "no partner client id: set AVALARA_CLIENT_ID (or use --client-id)") end
  if not secret then cli.fail(EXIT.config, "no partner client secret: set AVALARA_CLIENT_SECRET") end
  local o = { client_id = id, client_secret = secret, flow = flow, environment = environment,
    emulator_url = environment == "local" and (opts.emulator_url or cli.getenv(sys, "AVALARA_EMULATOR_URL")
      or cli.DEFAULT_EMULATOR_URL) or nil,
    cafile = opts.cafile or cli.getenv(sys, "AVALARA_CAFILE"), timeout = cli.positive_number(opts, "timeout"),
    store = M.store(sys, cli) }
  for k, v in pairs(extra or {}) do o[k] = v end
  local ok, p = pcall(partner.new, o)
  if not ok then cli.fail(EXIT.config, (tostring(p):gsub("^.-avalara%.partner%.new: ", ""))) end
  return p
end

--- A client for `--connection ID` (`partner:client`, as `make_client`'s).
-- @tparam table sys
-- @tparam table opts the parsed options (`connection`, `company`, ...)
-- @tparam table cli the helpers of `avalara.cli`
-- @tparam boolean needs_company whether the command classifies
-- @tparam table hooks `{on_request, on_token}`
-- @treturn table the client
function M.client(sys, opts, cli, needs_company, hooks)
  local p = M.partner(sys, opts, cli, { on_request = hooks.on_request })
  local company = opts.company or cli.getenv(sys, "AVALARA_COMPANY_ID")
  local client, err = p:client(opts.connection, { company_id = company })
  if not client then
    -- an unknown connection is missing credentials: exit 3 from every command (as disconnect's)
    cli.fail(err.code == "connection_unknown" and cli.EXIT.config or cli.EXIT.failed, tostring(err.message)
      .. (err.code == "connection_unknown" and " (see hscode connections)" or ""))
  end
  if needs_company and not client.company_id then
    cli.fail(cli.EXIT.config, "connection " .. opts.connection .. " has no company: use --company ID")
  end
  return client
end

return M
