--- The client credentials grant as a token source: one token request (with
-- the client's retry policy) through the client's transport, the answer as
-- a token record `{access_token, token_type, scope, expires_at, obtained_at}`.
-- What `avalara.token.cached` keeps and renews.
--
--    local src = source.new(client, { token_url = ..., client_id = ..., client_secret = ...,
--                                     scope = ..., auth_method = "post" })
--    local rec, err = src:fetch()
-- @module avalara.token.source
local clock = require "avalara.clock"
local retry = require "avalara.retry"
local discovery = require "avalara.token.discovery"

local M = {}

-- The secrets, out of the source table (dumping a client shows none).
local secrets = setmetatable({}, { __mode = "k" })

--- A client credentials source.
-- @type Source
local Source = {}
Source.__index = Source
M.Source = Source

Source.__tostring = function(self)
  return ("avalara token source (client credentials, account %s, scope %s)"):format(tostring(self.client_id),
    tostring(self.scope))
end

--- Makes a source.
-- @param client what runs the exchanges: `client:exchange(kind, args)`, `client:prepare(kind, args)`,
-- `client:observe(method, url, status, started, attempt, err)`, `client.retries`, `client.sleep`
-- @tparam table creds `{token_url | issuer, client_id, client_secret, scope, auth_method, warn?}`: with
-- `issuer`, the endpoints come from its discovery document (`avalara.token.discovery`), and
-- `warn(what, message)` hears when the document could not be had and the fallbacks were used
-- @treturn Source
function M.new(client, creds)
  local self = setmetatable({ client = client, token_url = creds.token_url, issuer = creds.issuer,
    client_id = creds.client_id, scope = creds.scope, auth_method = creds.auth_method, warn = creds.warn }, Source)
  secrets[self] = creds.client_secret
  return self
end

--- The record of a core token (closes it).
-- @param tok a core token
-- @treturn table
function M.record(tok)
  local r = { access_token = tok:access_token(), token_type = tok:token_type(), scope = tok:scope(),
    expires_at = tok:expires_at(), obtained_at = clock.now() }
  tok:close()
  return r
end

--- The Identity endpoints the source uses: from the issuer's discovery document (cached for its
-- lifetime; the issuer's `/connect/*` when it cannot be had), else what `token_url` implies.
-- @treturn table `{token_endpoint, revocation_endpoint?, device_authorization_endpoint?}`
function Source:endpoints()
  if not self.issuer then return discovery.derived(self.token_url) end
  local client = self.client
  local ep, err = discovery.endpoints(self.issuer, { where = "client:token",
    exchange = function(args) return client:exchange("request", args) end })
  if err and self.warn then
    self.warn("discovery", "avalara: no discovery document from " .. self.issuer .. " (" .. tostring(err)
      .. "): using " .. ep.token_endpoint)
  end
  return ep
end

--- The grant's arguments (they hold the secret).
-- @treturn table
function Source:args()
  local ep = self:endpoints()
  return { token_url = ep.token_endpoint, revocation_url = ep.revocation_endpoint, client_id = self.client_id,
    client_secret = secrets[self], scope = self.scope, auth_method = self.auth_method }
end

--- One token request, with the client's retries.
-- @return a token record, or nil, err
function Source:fetch()
  local client = self.client
  local args = self:args()
  return retry.run(client.retries, function(attempt)
    local started = clock.now()
    local tok, e = client:exchange("client_credentials", args)
    client:observe("POST", args.token_url, tok and 200 or nil, started, attempt, e)
    if not tok then return nil, e end
    return M.record(tok)
  end, { sleep = client.sleep, deadline = client.deadline and client:deadline() or nil })
end

--- The grant, prepared and not sent (a core exchange: `avalara.async` runs it on its multi).
-- @return a prepared exchange, and its token URL
function Source:grant()
  local args = self:args()
  return self.client:prepare("client_credentials", args), args.token_url
end

return M
