--- `hscode connect`: connects an Avalara account through the partner
-- authorization lifecycle, as `gh auth login` does: prints the authorize URL,
-- listens once on a loopback redirect (`http://127.0.0.1:PORT/callback`) for
-- the browser coming back, and keeps the connection in the user's store.
-- @module avalara.cli.connect
local socket = require "socket"
local cjson = require "cjson"
local partner_cli = require "avalara.cli.partner"

local M = {}

--- What it does, for `hscode --help`.
M.summary = "connect an Avalara account (browser, loopback redirect)"

--- The command's own options (the partner options are global).
M.options = { port = { "PORT" }, id = { "ID" }, wait = { "SECONDS" }, json = {} }

--- The command's help.
M.help = [[
Usage: hscode connect [--port PORT] [--company ID] [--id ID] [options]

Connects an Avalara account to this partner: prints the URL to open in a
browser, waits for Avalara to send the browser back to
http://127.0.0.1:PORT/callback (this command listens there, once), then
keeps the connection (its tokens, private: mode 0600) in
$XDG_DATA_HOME/avalara-hscode/connections.db. Use it with
--connection ID on classify, batch, lookup and token.

  --port PORT          the loopback port to listen on (default: a free one)
  --company ID         the company the connection is for (kept with it)
  --id ID              reconnect this existing connection (after it was lost)
  --wait SECONDS       how long to wait for the browser (default 300)
  --json               print the connection as JSON

The partner: --client-id and --client-secret (AVALARA_CLIENT_ID,
AVALARA_CLIENT_SECRET), --flow 2012 (default) or identity, --env. With
--env local and no client id, the emulator's demo partner.

Example: hscode connect --env local --company 1001
]]

local function html_escape(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
    ["'"] = "&#39;" }))
end

local function respond(conn, status, title, text)
  local body = ("<!doctype html><html><head><meta charset=\"utf-8\"><title>%s</title></head>"
    .. "<body><h1>%s</h1><p>%s</p></body></html>\n"):format(html_escape(title), html_escape(title), html_escape(text))
  conn:send(("HTTP/1.1 %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n"
    .. "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s"):format(status, #body, body))
  conn:close()
end

-- The target of the request on `conn` ("/callback?..."), or nil.
local function read_target(conn)
  conn:settimeout(10)
  local line = conn:receive("*l")
  local target = line and line:match("^GET (%S+) HTTP/%d%.%d$")
  repeat local header = conn:receive("*l") until not header or header == ""
  return target
end

-- Waits for the browser's callback; returns its query string.
local function wait_for_callback(server, seconds, cli)
  local deadline = socket.gettime() + seconds
  while true do
    local left = deadline - socket.gettime()
    if left <= 0 then
      cli.fail(cli.EXIT.failed, ("no authorization came back within %d s: run hscode connect again"):format(seconds))
    end
    -- In short slices: Ctrl-C is acted on between two (luasocket resumes a
    -- wait a signal interrupted).
    server:settimeout(math.min(left, 0.25))
    local conn = server:accept()
    if conn then
      local target = read_target(conn)
      local path, query = (target or ""):match("^([^?]*)%??(.*)$")
      if path == "/callback" and (query:find("state=", 1, true) or query:find("error=", 1, true)) then
        return query, conn
      end
      respond(conn, "404 Not Found", "Not here", "This is hscode connect, waiting for Avalara's redirect.")
    end
  end
end

--- Runs `hscode connect`.
-- @tparam table sys
-- @tparam table opts
-- @tparam table args
-- @tparam table cli the helpers of `avalara.cli`
function M.run(sys, opts, args, cli)
  if #args > 0 then cli.usage_error("connect takes no arguments", "connect") end
  local port = opts.port or "0"
  if not tostring(port):match("^%d+$") or tonumber(port) > 65535 then
    cli.usage_error("--port must be a port number (got '" .. tostring(port) .. "')", "connect")
  end
  local wait = cli.positive_number(opts, "wait", "connect") or 300
  local company = opts.company or cli.getenv(sys, "AVALARA_COMPANY_ID")
  if company and not company:match("^%d+$") then cli.usage_error("--company must be digits", "connect") end

  local server, berr = socket.bind("127.0.0.1", tonumber(port))
  if not server then cli.fail(cli.EXIT.failed, "cannot listen on 127.0.0.1:" .. port .. ": " .. tostring(berr)) end
  local _, bound = server:getsockname()
  local redirect_uri = "http://127.0.0.1:" .. bound .. "/callback"
  local ok, p = pcall(partner_cli.partner, sys, opts, cli, { redirect_uri = redirect_uri })
  if not ok then server:close(); error(p, 0) end
  local url, state = p:authorize_url { company_id = company, connection_id = opts.id }
  if not url then server:close(); cli.request_failed("cannot start the authorization", state) end

  sys.stderr:write("Open this URL in a browser and approve the connection:\n\n")
  sys.stdout:write(url, "\n")
  sys.stdout:flush()
  sys.stderr:write("\nWaiting for the browser on ", redirect_uri, " (", wait, " s)...\n")
  sys.stderr:flush()

  local waited, query, conn = pcall(wait_for_callback, server, wait, cli)
  server:close()
  if not waited then
    -- Ctrl-C while waiting (the interpreter raises "interrupted!"): nothing was made.
    if tostring(query):find("interrupted!", 1, true) then cli.fail(130, "cancelled: no connection was made") end
    error(query, 0)
  end
  local connection, err = p:handle_callback(query)
  if not connection then
    respond(conn, "400 Bad Request", "Not connected", tostring(err.message))
    cli.request_failed("the connection failed", err)
  end
  respond(conn, "200 OK", "Connected", "hscode is connected (" .. connection.id .. "). You can close this window.")
  if opts.json then
    sys.stdout:write(cjson.encode(connection), "\n")
    return
  end
  sys.stdout:write(("connected    %s\nflow         %s\nscope        %s\n"):format(connection.id, connection.flow,
    tostring(connection.scope)))
  if connection.company_id then sys.stdout:write(("company      %d\n"):format(connection.company_id)) end
  sys.stderr:write("Use it with: hscode classify DESCRIPTION --country CC --connection ", connection.id, "\n")
end

return M
