--- Where a warning goes when its caller gave no `on_warning` (or it raised):
-- nginx's error log inside nginx, else standard error. Shared by the client
-- and the fleet.
-- @module avalara.warning
local M = {}

--- Writes `message` as a warning (never holding a secret: callers' messages do not).
-- @string message
function M.default(message)
  local ngx = type(_G) == "table" and rawget(_G, "ngx") -- a sandbox's environment may have no _G
  if type(ngx) == "table" and type(ngx.log) == "function" and ngx.WARN then
    ngx.log(ngx.WARN, "avalara: ", message)
  elseif io and io.stderr then
    io.stderr:write("avalara: warning: ", message, "\n")
  elseif print then -- a sandbox without io: the host's print
    print("avalara: warning: " .. message)
  end
end

return M
