-- Starts a small Lua HTTP server in its own lua5.4 process on a free
-- loopback port, and stops it by pid. The server script is run as
-- `lua5.4 SCRIPT DIR ARGS...`; it binds port 0 and writes the port to
-- DIR/port (atomically: DIR/port.tmp, then a rename).
--
--   local hostile = require "spec.support.hostile"
--   local h = hostile.start()      -- spec/support/hostile_server.lua; h.url = "http://127.0.0.1:PORT"
--   local s = hostile.spawn(path, { "2" })
--   ...
--   h:stop()
local socket = require "socket"
local emu = require "spec.support.emulator"

local M = {}
local Server = {}
Server.__index = Server

function M.spawn(script, args)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. emu.shell_quote(dir)))
  local quoted = {}
  for i, a in ipairs(args or {}) do quoted[i] = emu.shell_quote(a) end
  -- a plain interpreter: a sanitizer preload is for the process under test only
  local cmd = "unset LD_PRELOAD; cd " .. emu.shell_quote(emu.repo_root()) .. " && lua5.4 " .. emu.shell_quote(script)
    .. " " .. emu.shell_quote(dir) .. " " .. table.concat(quoted, " ") .. " >/dev/null 2>&1 </dev/null & echo $!"
  local p = assert(io.popen(cmd, "r"))
  local pid = tonumber(p:read("*l"))
  p:close()
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    local f = io.open(dir .. "/port")
    if f then
      local port = f:read("*n")
      f:close()
      os.execute("rm -rf " .. emu.shell_quote(dir))
      return setmetatable({ pid = pid, url = "http://127.0.0.1:" .. port }, Server)
    end
    socket.sleep(0.02)
  end
  os.execute("kill " .. pid .. " 2>/dev/null")
  error(script .. " did not start")
end

function M.start()
  return M.spawn("spec/support/hostile_server.lua")
end

function Server:stop()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pid = nil
  end
end

-- Percent-encoding of s (`space`: what a space becomes, "+" in a form; else %20).
local function pct(s, space)
  return (s:gsub("[^%w%-%._~]", function(c)
    if c == " " and space then return space end
    return string.format("%%%02X", c:byte())
  end))
end

--- Every form in which a server may echo a secret: raw, form- and percent-encoded (either hex case),
-- JSON-escaped (with and without "\/"), HTML-escaped.
function M.forms(secret)
  local json_escaped = secret:gsub('[\\"]', "\\%0")
  return { raw = secret, form = pct(secret, "+"), percent = pct(secret), lower = pct(secret, "+"):lower(),
           json = json_escaped, json_slash = (json_escaped:gsub("/", "\\/")),
           html = (secret:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
             ['"'] = "&quot;", ["'"] = "&#39;" })) }
end

--- Raises unless `err` is an error table none of whose texts (tostring, message, body, ...) holds a
-- form of `secret` of 4 bytes or more (this module is not the spec's environment: no busted assert).
function M.assert_no_form(label, err, secret)
  if type(err) ~= "table" then error(label .. ": expected an error table, got " .. tostring(err), 2) end
  local texts = { tostring(err), err.message, err.body, err.error_description, err.error_uri, err.code,
                  err.request_id }
  for fname, form in pairs(M.forms(secret)) do
    for _, text in pairs(texts) do
      if type(text) == "string" and #form >= 4 then
        if text:find(form, 1, true) then error(label .. ": the " .. fname .. " form of a secret was kept", 2) end
      end
    end
  end
end

return M
