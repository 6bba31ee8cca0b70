--- Where this Lua runs, for the transports and stores that can use nginx:
-- whether it is inside nginx (ngx_lua / OpenResty), and how a request made
-- now can travel there (cosockets exist in the request phases and timers,
-- blocking is allowed in `init_by_lua`, the other phases can do neither).
-- `avalara.openresty` re-exports both.
-- @module avalara.transport.nginx
local M = {}

local COSOCKET_PHASES = { rewrite = true, access = true, content = true, timer = true, ssl_cert = true,
  ssl_session_fetch = true, ssl_client_hello = true, preread = true }

--- Whether this Lua runs inside nginx (ngx_lua / OpenResty).
-- @treturn boolean
function M.in_nginx()
  return type(ngx) == "table" and type(ngx.get_phase) == "function"
end

--- How a request made now should travel: "cosocket", "libcurl" (the
-- `init` phase, or outside nginx), or nil and a message naming the phase.
-- @treturn string|nil
-- @treturn[opt] string the reason when no request can be made now
function M.mode()
  if not M.in_nginx() then return "libcurl" end
  local phase = ngx.get_phase()
  if COSOCKET_PHASES[phase] then return "cosocket" end
  if phase == "init" then return "libcurl" end
  return nil, "avalara: no network calls in nginx's " .. phase .. " phase (cosockets are not available "
    .. "there): call from a request phase (rewrite, access, content) or a timer (ngx.timer.at)"
end

return M
