--- OpenResty support: what `avalara.new` (and `avalara.partner.new`,
-- `avalara.fleet.new`) fill in by themselves inside nginx, and the names
-- under which the nginx pieces are documented.
--
-- Inside nginx, `avalara.new` uses this module by itself: in the request
-- phases and timers (where cosockets exist) requests go through nginx's
-- event loop (`avalara.transport.cosocket`); in `init_by_lua` (where
-- blocking is allowed) through libcurl; in the other phases
-- (`init_worker_by_lua`, `set_by_lua`, `log_by_lua`, header and body
-- filters, balancer) a call raises an error that says so.
--
--    lua_shared_dict avalara_tokens 1m;
--    lua_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;
--    ...
--    local client = avalara.new{ ..., shared_dict = "avalara_tokens" }
--
-- HTTPS is verified against nginx's `lua_ssl_trusted_certificate` (the
-- `cafile` option cannot reach cosockets); `verify = false` turns it off.
--
-- The parts live in the foundations: `avalara.transport.nginx` (`in_nginx`,
-- `mode`), `avalara.transport.cosocket` (`transport`, `run_many`),
-- `avalara.store.shared_dict` (`store`), `avalara.transport.subrequest`
-- (also `avalara.openresty.subrequest`).
-- @module avalara.openresty
local nginx = require "avalara.transport.nginx"
local cosocket_transport = require "avalara.transport.cosocket"
local shared_dict = require "avalara.store.shared_dict"
local clock = require "avalara.clock"

local M = {}

--- Whether this Lua runs inside nginx (ngx_lua / OpenResty): `avalara.transport.nginx.in_nginx`.
-- @function in_nginx
M.in_nginx = nginx.in_nginx

--- How a request made now should travel: "cosocket", "libcurl" (the `init`
-- phase, or outside nginx), or nil and a message naming the phase:
-- `avalara.transport.nginx.mode`.
-- @function mode
M.mode = nginx.mode

--- A transport function on cosockets: `avalara.transport.cosocket.transport`.
-- @function transport
M.transport = cosocket_transport.transport

--- Runs a transport over requests on light threads: `avalara.transport.cosocket.run_many`.
-- @function run_many
M.run_many = cosocket_transport.run_many

--- A store on a `lua_shared_dict`: `avalara.store.shared_dict.new(name, opts)`.
-- @string name the dict's name, as in `lua_shared_dict <name> 1m;`
-- @tparam[opt] table opts `{lock_ttl = 30}`
-- @treturn table the store
-- @function store
M.store = shared_dict.new

-- ------------------------------------------------------------ client defaults

--- The client options inside nginx, filled in by `avalara.new` when it
-- runs in nginx (each only when the caller did not give one): the
-- cosocket transport (per phase, see `mode`), `run_many` for batches,
-- `ngx.sleep` for waits, and the shared-dict store named by `shared_dict`.
-- @tparam table opts the options given to `avalara.new`
-- @treturn table hooks `{transport, many, sleep, wait, store}`
function M.client_defaults(opts)
  local cosocket = M.transport { connect_timeout = opts.connect_timeout, timeout = opts.timeout,
    verify = opts.verify, max_body = opts.max_body }
  local hooks = {}
  -- nil: use libcurl (init phase); raises in phases without cosockets.
  hooks.transport = function()
    local mode, why = M.mode()
    if not mode then error(why, 0) end
    return mode == "cosocket" and cosocket or nil
  end
  hooks.many = function(transport, requests, concurrency)
    return M.run_many(transport, requests, concurrency)
  end
  hooks.sleep = clock.sleep -- ngx.sleep where it yields (through avalara.clock, as every sleep)
  hooks.wait = function() return hooks.sleep(0.005) end
  if opts.shared_dict ~= nil then hooks.store = M.store(opts.shared_dict) end
  return hooks
end

return M
