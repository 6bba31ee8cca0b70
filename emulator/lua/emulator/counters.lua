-- Request counters, kept in a shared dict so all workers add to the same
-- numbers. Keys are "<group>:<name>[:<sub>]"; snapshot() turns them into
-- the nested JSON of GET /_emulator/counters.
local dict = ngx.shared.emu_counters

local M = {}

function M.incr(key, by)
  local n, err = dict:incr(key, by or 1, 0)
  if not n then ngx.log(ngx.ERR, "counter ", key, ": ", err) end
  return n
end

function M.get(key)
  return dict:get(key) or 0
end

-- Every request: the total, its route, and a new TCP connection the first
-- time a connection's serial number is seen (keep-alive and HTTP/2
-- multiplexing checks count on it: the streams of one HTTP/2 connection
-- share its serial). Serials are kept an hour.
function M.request(route)
  M.incr("requests")
  if dict:add("connection:" .. ngx.var.connection, true, 3600) then M.incr("connections") end
  M.incr("routes:" .. route)
end

function M.grant(route, grant_type)
  M.incr("grants:" .. route .. ":" .. grant_type)
end

function M.issued(route)
  M.incr("issued:" .. route)
end

function M.fault(route, kind)
  M.incr("faults:" .. route .. ":" .. kind)
end

function M.reset()
  dict:flush_all()
  dict:flush_expired()
end

function M.snapshot()
  local out = {
    requests = 0, connections = 0,
    routes = {}, grants = {}, issued = {}, faults = {}, quota_used = {}, webhooks = {},
  }
  for _, key in ipairs(dict:get_keys(0)) do
    local v = dict:get(key)
    if v then
      local group, a, b = key:match("^([^:]+):([^:]+):?(.*)$")
      if not group then
        out[key] = v
      elseif group == "quota" then
        out.quota_used[a] = v
      elseif type(out[group]) ~= "table" then -- luacheck: ignore 542
        -- internal keys (rate limit windows) are not reported
      elseif b ~= "" then
        out[group][a] = out[group][a] or {}
        out[group][a][b] = v
      elseif out[group] then
        out[group][a] = v
      end
    end
  end
  return out
end

return M
