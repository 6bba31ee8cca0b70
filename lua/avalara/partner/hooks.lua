--- The user hooks a partner and its connections run (`on_refresh`,
-- `on_request`, `on_warning`, `wait`), from the options they were given: a
-- hook that raises is told to `on_warning` (else nginx's error log, else
-- stderr) and changes nothing. Built on the options alone, so that the
-- partner reads nothing private of the clients it makes.
-- @module avalara.partner.hooks
local clock = require "avalara.clock"
local openresty = require "avalara.openresty"
local default_warn = require("avalara.warning").default

local M = {}

local Hooks = {}
Hooks.__index = Hooks

--- The hooks of a set of client options.
-- @tparam table opts `{on_request, on_warning, wait}` (each optional)
-- @treturn table the hooks
function M.new(opts)
  return setmetatable({ on_request = opts.on_request, on_warning = opts.on_warning, wait = opts.wait }, Hooks)
end

-- The interpreter's Ctrl-C ("interrupted!") is never taken for a hook's failure: raised again.
local function interrupted(err)
  if type(err) == "string" and err:match("interrupted!$") then error(err, 0) end
end

--- Tells that hook `name` raised `err` (the work went on as if it had returned);
-- the interpreter's "interrupted!" (Ctrl-C) is raised again instead.
-- @string name the hook
-- @param err what it raised
-- @string[opt] where what was being done
function Hooks:raised(name, err, where)
  interrupted(err)
  local message = ("the %s hook raised (%signored): %s"):format(name, where and (where .. "; ") or "", tostring(err))
  local ok, werr = false, nil
  if self.on_warning then ok, werr = pcall(self.on_warning, message) end
  interrupted(werr)
  if not ok then default_warn(message) end
end

--- Tells `on_request` of an exchange made outside a client call (a refresh).
-- @string method
-- @string url
-- @tparam[opt] number status
-- @number started `clock.now()` when it was sent
-- @tparam[opt] table err its error
function Hooks:request(method, url, status, started, err)
  if not self.on_request then return end
  local ok, herr = pcall(self.on_request, { method = method, url = url, status = status or (err and err.status) or nil,
    duration = clock.now() - started, attempt = 1, error_kind = err and err.kind or nil })
  if not ok then self:raised("on_request", herr) end
end

-- Whether a coroutine that may yield is running (not the main one).
local function in_coroutine()
  local co, main = coroutine.running()
  if co == nil or main then return false end
  if coroutine.isyieldable then return coroutine.isyieldable() end
  return true
end

--- Waits a little while another holder has a lock: `wait`, else in nginx
-- the client's sleep (`ngx.sleep`), else a yield in a coroutine, else 10 ms.
-- @tparam function sleep the client's sleep (`client.sleep`)
function Hooks:pause(sleep)
  if self.wait then return self.wait() end
  if openresty.in_nginx() then return sleep(0.005) end
  if in_coroutine() then return coroutine.yield() end
  return sleep(0.01)
end

return M
