--- `hscode connect`: connects an Avalara account through the partner
-- authorization lifecycle, as `gh auth login` does: prints the authorize URL,
-- listens once on a loopback redirect (`http://127.0.0.1:PORT/callback`) for
-- the browser coming back, and keeps the connection in the user's store.
-- @module avalara.cli.connect
local socket = require "socket"
local json = require "avalara.cli.json"
local core = require "avalara.core"
local clock = require "avalara.clock"
local partner_cli = require "avalara.cli.partner"

local M = {}

--- What it does, for `hscode --help`.
M.summary = "connect an Avalara account (browser, loopback redirect)"
--- What Ctrl-C says while it waits for the browser (after the callback, it
-- says "interrupted").
M.interrupted = "cancelled: no connection was made"

--- The command's own options (the partner options are global).
M.options = { port = { "PORT" }, id = { "ID" }, wait = { "SECONDS" }, json = {} }

--- The command's help.
M.help = [[
Usage: hscode connect [--port PORT] [--company ID] [--id ID] [options]

Connects an Avalara account to this partner: prints the URL to open in a
browser, waits for Avalara to send the browser back to
http://127.0.0.1:PORT/callback (this command listens there; a request that
does not carry this authorization's state is answered 400 and ignored), then
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
  conn:settimeout(1) -- a small answer into a fresh socket's buffer; a client that reads nothing costs 1 s at most
  conn:send(("HTTP/1.1 %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n"
    .. "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s"):format(status, #body, body))
  conn:close()
end

-- The listener's limits: a slow or too big client is answered (408, 431)
-- and closed, a silent one closed: none holds the flow.

--- The most bytes of one request (its line and headers; a GET has no body).
M.MAX_REQUEST = 8192
--- Seconds a connection has to send its whole request.
M.READ_TIME = 3
--- The most connections read at once (the oldest is dropped for a new one).
M.MAX_CLIENTS = 32

-- Whether `got` is the pending state, compared in a time that does not
-- depend on where they differ: HMACs under a key of this run are compared.
local function is_state(got, state, key)
  if type(got) ~= "string" then return false end
  return core.hmac_sha256(key, got) == core.hmac_sha256(key, state)
end

-- What to do with a whole request head: "callback", query when it is
-- Avalara's redirect for this authorization (it carries the pending state),
-- else status, title, text of the answer.
local function judge(head, state, key)
  local method, target = head:match("^(%u+) (%S+) HTTP/%d%.%d\r?\n")
  if not method then return "400 Bad Request", "Bad request", "This is hscode connect: it speaks HTTP." end
  local path, query = target:match("^([^?#]*)%??([^#]*)")
  if path ~= "/callback" then
    return "404 Not Found", "Not here", "This is hscode connect, waiting for Avalara's redirect."
  end
  if method ~= "GET" then return "405 Method Not Allowed", "Not allowed", "Avalara's redirect is a GET." end
  local ok, params = pcall(core.protocol.form_decode, query)
  if ok and is_state(params.state, state, key) then return "callback", query end
  return "400 Bad Request", "Not this authorization",
    "This request does not carry the state of the authorization hscode connect is waiting for: ignored."
end

-- Waits for the browser's callback: the first GET /callback that carries
-- `state`; any other request is answered and the wait goes on. Returns its
-- query string and its connection.
local function wait_for_callback(server, seconds, cli, state)
  local deadline = clock.now() + seconds
  local key = core.pkce() -- 256 random bits, for is_state
  local clients = {} -- oldest first: {sock, head, deadline}
  local function drop(i, status, title, text)
    local c = table.remove(clients, i)
    if not status then return c.sock:close() end
    c.sock:receive(65536) -- what is already here, unread: closing on it would reset the answer
    respond(c.sock, status, title, text)
  end
  server:settimeout(0)
  while true do
    local now = clock.now()
    if now >= deadline then
      for i = #clients, 1, -1 do drop(i) end
      cli.fail(cli.EXIT.failed, ("no authorization came back within %d s: run hscode connect again"):format(seconds))
    end
    -- In short slices: Ctrl-C is acted on between two (luasocket resumes a
    -- wait a signal interrupted), and slow clients are timed out.
    local wait, socks = math.min(deadline - now, 0.25), { server }
    for i, c in ipairs(clients) do
      socks[i + 1] = c.sock
      wait = math.min(wait, math.max(0, c.deadline - now))
    end
    local readable = socket.select(socks, nil, wait)
    if readable[server] then
      local sock = server:accept()
      if sock then
        sock:settimeout(0)
        if #clients >= M.MAX_CLIENTS then drop(1) end
        clients[#clients + 1] = { sock = sock, head = "", deadline = clock.now() + M.READ_TIME }
      end
    end
    now = clock.now()
    for i = #clients, 1, -1 do
      local c = clients[i]
      local closed = false
      if readable[c.sock] then
        local data, err, partial = c.sock:receive(M.MAX_REQUEST + 1 - #c.head)
        c.head = c.head .. (data or partial or "")
        closed = err == "closed"
      end
      local ends = c.head:find("\r?\n\r?\n")
      if ends and ends <= M.MAX_REQUEST then
        local what, a, b = judge(c.head, state, key)
        if what == "callback" then
          table.remove(clients, i)
          for j = #clients, 1, -1 do drop(j) end
          c.sock:settimeout(10)
          return a, c.sock
        end
        drop(i, what, a, b)
      elseif #c.head > M.MAX_REQUEST then
        drop(i, "431 Request Header Fields Too Large", "Too large", "This request is larger than hscode connect reads.")
      elseif closed then
        drop(i)
      elseif now >= c.deadline and c.head == "" then
        drop(i) -- a connection opened ahead (browsers preconnect): closed, no answer
      elseif now >= c.deadline then
        drop(i, "408 Request Timeout", "Too slow", "This request took too long to arrive.")
      end
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

  local waited, query, conn = pcall(wait_for_callback, server, wait, cli, state)
  server:close()
  -- from here on the code is being exchanged: Ctrl-C no longer means "nothing was made"
  if sys.exit_on_signal then
    sys.exit_on_signal("sigint", require("avalara.cli.log").is_json(sys) and sys.stderr:render("error", "sigint",
      "interrupted", { { "exit", 130 } }) or "\nhscode: interrupted\n")
  end
  if not waited then
    -- Ctrl-C while waiting (the interpreter raises "interrupted!"): nothing was made.
    if tostring(query):find("interrupted!", 1, true) then cli.fail(130, "cancelled: no connection was made") end
    error(query, 0)
  end
  local connection, err = p:handle_callback(query)
  if not connection then
    respond(conn, "400 Bad Request", "Not connected", tostring(err.message))
    -- What the server's OAuth error means here (seed 003's names), when it says more than its code.
    local detail = err.oauth_detail ~= err.code and err.oauth_detail
    cli.request_failed("the connection failed" .. (detail and " (" .. detail .. ")" or ""), err)
  end
  respond(conn, "200 OK", "Connected", "hscode is connected (" .. connection.id .. "). You can close this window.")
  if opts.json then
    sys.stdout:write(json.encode(connection), "\n")
    return
  end
  sys.stdout:write(("connected    %s\nflow         %s\nscope        %s\n"):format(connection.id, connection.flow,
    tostring(connection.scope)))
  if connection.company_id then sys.stdout:write(("company      %d\n"):format(connection.company_id)) end
  sys.stderr:write("Use it with: hscode classify DESCRIPTION --country CC --connection ", connection.id, "\n")
end

return M
