--- The Avalara HS code classification client: the library's front door.
--
--    local avalara = require "avalara"
--    local client = avalara.new{ account_id = "2000000001", license_key = "...",
--                                company_id = 1001, environment = "sandbox" }
--    local model = assert(client.hs:classify{ itemCode = "TS-1", description = "men's cotton t-shirt",
--                                             countryOfDestination = "US" })
--    model = assert(client.hs:wait(model))
--
-- The client (`avalara.client`) reaches each service as a field:
-- `client.hs` (classify, classification, wait, sections, hs_codes,
-- each_hs_code, hierarchy), `client.items` (the AvaTax Items API),
-- `client.batch`, `client.async`; the flat names (`client:classify`,
-- `client:start_classify`, ...) are aliases of those methods.
--
-- Runtime failures return `nil, err` (docs/errors.md); programming
-- errors (wrong types, missing account, license key or company) raise at
-- once naming the argument.
-- @module avalara
local core = require "avalara.core"
local client = require "avalara.client"
local discovery = require "avalara.token.discovery"

local M = { _VERSION = core.version, core = core, paths = require "avalara.paths", retry = require "avalara.retry",
  store = require "avalara.store", item = require "avalara.hs.item", definitions = require "avalara.hs.tariff",
  items = require "avalara.items" }

--- Known environments (`avalara.environments`): `production`, `sandbox`, `local` (uses `emulator_url`).
-- `items_base` is AvaTax's REST API, where the Items API lives, with the `avatax_api` scope.
M.environments = require("avalara.environments").known

--- The client type (`avalara.client`).
M.Client = client.Client

--- The token type `client:token()` returns (`avalara.token.token`).
M.Token = require("avalara.token.token").Token

--- Makes a client.
--
-- Options (each may come from the environment where noted):
--
-- - `account_id` (`AVALARA_ACCOUNT_ID`), `license_key` (`AVALARA_LICENSE_KEY`): required,
--   raise naming the missing one
-- - `company_id` (`AVALARA_COMPANY_ID`): digits; needed by the classification calls, which
--   raise without it (tokens and definitions need none)
-- - `environment` (`AVALARA_ENVIRONMENT`): "production" (default), "sandbox" or "local";
--   `legacy = true` selects the AvaTax hosts and the `avatax_api` scope
-- - `emulator_url` (`AVALARA_EMULATOR_URL`) for "local"; `token_url`, `api_base`, `scope`
--   override the environment's. "local" with no credentials and no URL is the emulator's demo
--   account at `http://127.0.0.1:18080`, as in `hscode --env local` (`avalara.environments["local"].demo`)
-- - `issuer` (instead of `token_url`): an Identity issuer URL (`https://identity.avalara.com`); the
--   token, revocation and device endpoints come from its discovery document, fetched before the
--   first token and cached for its lifetime (`avalara.discover`), as Avalara's SDKs do; when it
--   cannot be had, the issuer's `/connect/*` (with a warning). `client:endpoints()` tells them
-- - `items_base` and `items_scope`: AvaTax's REST API, where the Items flow lives
--   (`avalara.items`), and the scope of its token (`avatax_api`); by default the
--   environment's (`https://rest.avatax.com`, sandbox `https://sandbox-rest.avatax.com`,
--   `local`: the emulator). The client gets a token of each scope it uses, each cached
--   and renewed on its own in the same store; with one scope for both, one token
-- - `auth_method` ("post" or "basic"), `leeway` (300 s), `store` (a store, "memory" or "file",
--   see `avalara.store`), `on_token(info)`, `on_request(info)`
-- - in OpenResty: `shared_dict` (the name of a `lua_shared_dict`: one token for every worker);
--   requests then use cosockets by themselves (see `avalara.openresty`)
-- - `on_token(info)`: after a token is obtained or renewed; `info` = `{token_type, scope, expires_at,
--   expires_in, renewed, account_id}` (never the token or the license key)
-- - `on_request(info)`: after every HTTP exchange; `info` = `{method, url, status, duration, attempt,
--   error_kind}` (the URL carries no secret)
-- - `on_warning(message)`: once per kind of trouble that does not fail a call (a token store
--   that cannot be written: the token is then kept for this process only; a stored token record
--   that is not a valid token: ignored, a fresh token is fetched), and each time a hook
--   (`on_request`, `on_token`) raises: hooks run protected, their errors change nothing
--   (without `on_warning`, or when it raises itself, these go to nginx's error log or stderr)
-- - `retries` = `{max_attempts = 4, base_delay = 0.2, max_delay = 5, deadline = 30}` or `false`
-- - `concurrency` (16, the default of `classify_batch`); `starts_per_poll` (no bound): the most
--   requests one `client:poll` starts, a frame loop's budget (docs/nonblocking.md, "Frame budgets")
-- - any other option name raises, naming it (and the nearest known one)
-- - transport options: `timeout`, `connect_timeout`, `cafile`, `capath`, `proxy`, `verify`,
--   `user_agent`, `max_body`, `allow_http` (plain http:// to hosts other than loopback, refused
--   at once otherwise: credentials would travel in clear text), and `transport` (a Lua function
--   `req -> resp | nil, err`, as for the core; unlike the core's, it may yield when the client
--   runs in a coroutine: the core prepares each exchange and finishes it from the answer)
-- - `sleep(seconds)` (backoff and polling waits) and `wait()` (what a coroutine does while
--   another one renews the token; default `coroutine.yield()` inside a coroutine, else a short sleep)
-- - `token_source`: an object whose `token_source:token(client, stale)` returns the access token
--   record `{access_token, token_type, scope, expires_at}` (or nil, err) instead of the client
--   credentials grant; `account_id` and `license_key` are then not needed. `stale` is an access
--   token the API just refused (renew it), or nil. `avalara.partner` clients use it.
-- - `gate(client, n)`: asked before this client (or one `derive`d from it) sends `n` API requests
--   (not token requests); returns true to send them, or nil, err to fail them unsent with `err`.
--   `avalara.fleet` gives its rate budget this way.
-- @tparam[opt] table opts
-- @treturn Client
M.new = client.new

--- The discovery document of an Identity issuer (`GET <issuer>/.well-known/openid-configuration`):
-- a table of its keys (`token_endpoint`, `revocation_endpoint`, `device_authorization_endpoint`,
-- `grant_types_supported`, ...), or nil, err. Cached per issuer for the answer's
-- `Cache-Control: max-age`, else an hour (`avalara.token.discovery.DEFAULT_MAX_AGE`); the document
-- must name this issuer. `opts`: transport options (`timeout`, `cafile`, `transport`, ...).
--
--    local doc = assert(avalara.discover("https://identity.avalara.com"))
--    print(doc.token_endpoint)   --> https://identity.avalara.com/connect/token
-- @string issuer_url
-- @tparam[opt] table opts
-- @treturn table the document, or nil, err
function M.discover(issuer_url, opts)
  return discovery.discover(issuer_url, opts)
end

--- Partner integrations: `avalara.partner.new{...}` (the module `avalara.partner`).
M.partner = require "avalara.partner"

--- Signing in at a terminal (RFC 8628): `avalara.device.start{...}` (the module `avalara.device`).
M.device = require "avalara.device"

return M
