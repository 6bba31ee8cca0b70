--- The `hscode` command (bin/hscode): classify products, look up HS codes
-- and show the access token, from a shell.
--
--    hscode classify "men's cotton t-shirt" --country US
--    hscode batch products.csv --country US --out results.csv
--    hscode lookup 610910 --country US
--    hscode get 1001-TS-1-US
--    hscode token
--    hscode connect --company 1001           (a partner connection; then --connection ID)
--
-- This module parses the command line (Debian's lua-argparse) and runs one
-- of the commands, each in its own module under `avalara.cli.` (`classify`,
-- `batch`, `lookup`, `get`, `token`, and the partner commands `connect`,
-- `connections`, `disconnect`). Everything the command touches comes
-- through `sys` (stdout, stderr, stdin, getenv, isatty, exit, store), so it
-- runs in-process in specs as well. Whatever goes wrong, the user sees one
-- line "hscode: ..." and an exit status, never a Lua stack trace.
-- @module avalara.cli
local argparse = require "argparse"
local avalara = require "avalara"
local common = require "avalara.cli.common"
local config = require "avalara.cli.config"
local log = require "avalara.cli.log"
local csv = require "avalara.csv"

local M = {}

--- Exit statuses (see `avalara.cli.common.EXIT`).
M.EXIT = common.EXIT
--- The emulator's demo account, used with `--env local` when no credentials are given.
M.DEMO = common.DEMO
--- The emulator URL for `--env local` when neither `--emulator-url` nor `AVALARA_EMULATOR_URL` is set.
M.DEFAULT_EMULATOR_URL = common.DEFAULT_EMULATOR_URL

--- Parses CSV text (`avalara.csv.parse`).
M.csv_parse = csv.parse
--- Formats records as CSV (`avalara.csv.format`).
M.csv_format = csv.format

local COMMANDS = {}
local ORDER = { "classify", "batch", "lookup", "get", "items", "token", "login", "logout", "connect", "connections",
  "disconnect", "completion" }
for _, name in ipairs(ORDER) do COMMANDS[name] = require("avalara.cli." .. name) end

-- Options every command takes, before or after the command: {name, metavar}, or {name} for a flag.
local GLOBAL_OPTIONS = { { "env", "NAME" }, { "account", "ID" }, { "license-key", "KEY" },
  { "license-key-file", "FILE" }, { "company", "ID" }, { "emulator-url", "URL" }, { "cafile", "FILE" },
  { "timeout", "SECONDS" }, { "verbose" }, { "help" }, { "connection", "ID" }, { "client-id", "ID" },
  { "client-secret", "SECRET" }, { "client-secret-file", "FILE" }, { "flow", "FLOW" },
  { "profile", "NAME" }, { "quiet" }, { "no-progress" }, { "log-format", "FORMAT" } }
local SHORT = { verbose = "-v", help = "-h", out = "-o", quiet = "-q" }

local GLOBAL_HELP = [[
Global options (any command):
  --env NAME           production (default), sandbox or local (the emulator)
                       [AVALARA_ENVIRONMENT]
  --account ID         AvaTax account ID [AVALARA_ACCOUNT_ID]
  --license-key-file FILE  read the license key from FILE (- for stdin), one
                       line, readable by you only (chmod 600)
  --license-key KEY    license key [AVALARA_LICENSE_KEY]. Prefer the variable
                       or --license-key-file: a key on the command line is
                       visible to other users (ps) and stays in your shell
                       history (hscode warns)
  --company ID         company ID, for classify, batch and get [AVALARA_COMPANY_ID]
  --emulator-url URL   the emulator, for --env local [AVALARA_EMULATOR_URL]
                       (default http://127.0.0.1:18080)
  --cafile FILE        CA certificates to trust, PEM [AVALARA_CAFILE]
  --timeout SECONDS    limit for each HTTP request (default 30)
  -v, --verbose        log each HTTP exchange on stderr (no secrets)
  --profile NAME       the profile of the config file to use [HSCODE_PROFILE]
                       ($XDG_CONFIG_HOME/hscode/config, else
                       ~/.config/hscode/config; see docs/cli.md)
  -q, --quiet          no progress and no informational lines on stderr
                       (warnings and errors still)
  --no-progress        no progress lines on stderr
  --log-format FORMAT  text (default) or json: each stderr line one JSON object
  -h, --help           show help

Partner connections (see hscode connect):
  --connection ID      call on behalf of this connection (classify, batch,
                       lookup, get, token) instead of the account's credentials
  --client-id ID       the partner's client id [AVALARA_CLIENT_ID]
  --client-secret-file FILE  read the partner's secret from FILE (- for stdin)
  --client-secret S    its secret [AVALARA_CLIENT_SECRET]; prefer the variable
                       or --client-secret-file (on the command line it is
                       visible to other users; hscode warns)
  --flow FLOW          2012 (default) or identity [AVALARA_FLOW]
]]

local function main_help()
  local lines = {}
  for _, name in ipairs(ORDER) do
    local c = COMMANDS[name]
    local usage = c.help:match("^Usage: hscode (%S+ ?%S*)")
    lines[#lines + 1] = string.format("  %-20s  %s", usage:match("^(%S+ [A-Z]+)$") or name,
      c.summary or c.help:match("\n\n([^\n]*)"):gsub("[.:]$", ""))
  end
  return [[
Usage: hscode [options] COMMAND [ARGS]

Classifies products into HS (Harmonized System) tariff codes with Avalara's
HS code classification service.

Commands:
]] .. table.concat(lines, "\n") .. "\n" .. [[
  help [COMMAND]        show this help, or a command's (also COMMAND --help)
  --version             show the versions of hscode and libcurl

]] .. GLOBAL_HELP .. [[

Credentials come from the options above, else the environment, else a
profile of $XDG_CONFIG_HOME/hscode/config (~/.config/hscode/config: [default]
or [profile NAME] sections of "option = value" lines), else from hscode
login. With --env local and neither an account nor a license key nor a
login, the emulator's demo account is used (account 2000000001, company 1001).

CSV output (batch, items): a cell that starts with =, +, -, @, a tab or a
carriage return gets a leading ' so that a spreadsheet does not run it as a
formula (hscode reads it back without the quote); --csv-formulas writes it
as it is.

Access tokens are kept in $XDG_CACHE_HOME/avalara-hscode/tokens.db (else
~/.cache/avalara-hscode/tokens.db), readable by you only (mode 0600), so
repeated runs reuse a valid token (one per account, license key and URL).

Exit status, every command: 0 success (batch --skip-invalid: also with rows
skipped, when every row sent succeeded); 1 a request failed, or some batch
or items rows did (or stopped on the quota); 2 usage or input error (a bad
config file too); 3 authentication or configuration error (an unknown
--connection, a config file with a secret that others can read, too); 130
interrupted (Ctrl-C), 143 terminated (SIGTERM).
]]
end

--- The command line's own tables, as the parser reads them, for `hscode completion` and the man page
-- (tools/man.lua): `{order, commands, global_options, short, global_help, main_help}`.
-- @treturn table
function M.describe()
  return { order = ORDER, commands = COMMANDS, global_options = GLOBAL_OPTIONS, short = SHORT,
    global_help = GLOBAL_HELP, main_help = main_help() }
end

-- Options as a list of {name, metavar?}, or a map name -> {metavar?} (the partner commands').
local function option_list(options)
  if options[1] ~= nil or next(options) == nil then return options end
  local list = {}
  for name, spec in pairs(options) do list[#list + 1] = { name, spec[1] } end
  table.sort(list, function(a, b) return a[1] < b[1] end)
  return list
end

-- The key argparse stores an option under ("license-key" -> "license_key").
local function key_of(name) return (name:gsub("%-", "_")) end

-- Where an option given before the command goes: argparse gives a command's
-- own copy of an option its unset value when the command starts, which
-- would overwrite the program's copy; `merge_global` joins the two.
local BEFORE = "before_command_"

local function add_options(parser, list, prefix)
  for _, o in ipairs(option_list(list)) do
    local names = (SHORT[o[1]] and SHORT[o[1]] .. " " or "") .. "--" .. o[1]
    local opt = o[2] and parser:option(names):argname(o[2]) or parser:flag(names)
    if prefix then opt:target(prefix .. key_of(o[1])) end
  end
end

-- A global option counts wherever it was given; after the command wins
-- when it was given in both places (the later one, as with any option).
local function merge_global(opts)
  for _, o in ipairs(GLOBAL_OPTIONS) do
    local key = key_of(o[1])
    if opts[key] == nil then opts[key] = opts[BEFORE .. key] end
    opts[BEFORE .. key] = nil
  end
  return opts
end

-- The parser: global options on the program and on every command.
local function parser()
  local p = argparse("hscode"):add_help(false):require_command(false):command_target("command")
  add_options(p, GLOBAL_OPTIONS, BEFORE)
  p:flag("--version")
  for _, name in ipairs(ORDER) do
    local c = p:command(name):add_help(false)
    add_options(c, GLOBAL_OPTIONS)
    add_options(c, COMMANDS[name].options)
    c:argument("args"):args("*")
  end
  return p
end

local function help(sys, command)
  local c = command and COMMANDS[command]
  if command and not c then common.usage_error("no command '" .. command .. "'") end
  sys.stdout:write(c and c.help .. "\n" .. GLOBAL_HELP or main_help())
end

-- The command named in argv (for the hint of a usage error).
local function named_command(argv)
  for _, a in ipairs(argv) do
    if COMMANDS[a] then return a end
  end
  return nil
end

-- The profile of the config file (`avalara.cli.config`: the options it
-- sets, the variables it stands in for after the environment's), then what
-- stderr shows (`avalara.cli.log`).
local function settle(sys, opts)
  sys.getenv = config.getenv(sys.getenv, config.apply(sys, opts, common))
  local format = opts.log_format or "text"
  if not log.FORMATS[format] then common.usage_error("--log-format must be text or json (got '" .. format .. "')") end
  sys.stderr:configure { format = format, quiet = opts.quiet and true or false, progress = not opts.no_progress }
end

-- `--log-format json` in argv, for the errors before the options are parsed.
local function json_asked(argv)
  for i, a in ipairs(argv) do
    if a == "--log-format=json" or (a == "--log-format" and argv[i + 1] == "json") then return true end
    if a == "--" then break end
  end
  return false
end

local function dispatch(sys, argv)
  if argv[1] == "help" then
    if #argv > 2 then common.usage_error("help takes one command name at most") end
    return help(sys, argv[2])
  end
  local ok, opts = parser():pparse(argv)
  if not ok then
    local message = tostring(opts):gsub("^unknown command", "no command")
    common.usage_error(message, named_command(argv))
  end
  merge_global(opts)
  if opts.version then
    sys.stdout:write(string.format("hscode (avalara-hscode) %s\n%s\n", avalara._VERSION, avalara.core.curl_version))
    return
  end
  if opts.help then return help(sys, opts.command) end
  if not opts.command then common.usage_error("a command is needed") end
  common.secret_options(sys, opts, opts.args)
  settle(sys, opts)
  local command = COMMANDS[opts.command]
  -- A short command ends at once on Ctrl-C (nothing of it needs finishing:
  -- the stores survive kill -9), saying `command.interrupted` if it has its
  -- own words; the long ones catch signals themselves to keep what they did
  -- (`catches_signals`).
  if sys.exit_on_signal and not command.catches_signals then
    local sink = sys.stderr
    sys.exit_on_signal("sigint", (sink.json and "" or "\n") .. sink:render("error", "sigint",
      command.interrupted or "interrupted", { { "exit", common.EXIT.sigint } }))
    sys.exit_on_signal("sigterm", (sink.json and "" or "\n") .. sink:render("error", "sigterm", "terminated",
      { { "exit", common.EXIT.sigterm } }))
  end
  -- the partner commands take the shared helpers as a fourth argument; completion the tables
  return command.run(sys, opts, opts.args or {}, common, M.describe)
end

local function real_isatty(fd)
  local r = os.execute("test -t " .. fd)
  return r == true or r == 0
end

local function default_sys(sys)
  local s = {
    stdout = io.stdout, stderr = io.stderr, stdin = io.stdin, getenv = os.getenv, isatty = real_isatty,
    exit = os.exit, store = function() return common.file_store("cache", "tokens.db") end,
  }
  for k, v in pairs(sys or {}) do s[k] = v end
  return s
end

--- Runs the command line `argv` and returns the exit status.
-- @tparam table argv the arguments (as `arg`)
-- @tparam[opt] table sys overrides of `{stdout, stderr, stdin, getenv, isatty, exit, store, exit_on_signal}`
-- (`exit_on_signal(name, message)`: how a short command ends on a signal; `main` sets
-- `core.sys.exit_on_signal`, `run` none, so that a host's signals stay its own)
-- @treturn int exit status
function M.run(argv, sys)
  sys = default_sys(sys)
  sys.argv = argv
  local sink = log.new(sys.stderr)
  sink:configure { format = json_asked(argv) and "json" or "text" }
  sys.stderr = sink
  local ok, result = pcall(dispatch, sys, argv)
  sink:flush_partial()
  if ok then return result or common.EXIT.ok end
  if getmetatable(result) == common.Failure then
    local event
    for name, code in pairs(common.EXIT) do
      if code == result.code then event = name end
    end
    sink:emit("error", event, result.message, { { "exit", result.code }, { "hint", result.hint } },
      "hscode: " .. result.message .. "\n" .. (result.hint and result.hint .. "\n" or ""))
    return result.code
  end
  -- Not ours: Lua's own Ctrl-C (lua5.4 raises "interrupted!" in the
  -- commands that do not catch signals), or a bug; still no stack trace.
  local message = tostring(result)
  if message:match("interrupted!$") then
    sink:emit("error", "sigint", "interrupted", { { "exit", common.EXIT.sigint } }, "\nhscode: interrupted\n")
    return common.EXIT.sigint
  end
  local hint = "This is a bug in hscode; please report it with the command line (without the license key)."
  sink:emit("error", "internal", "internal error: " .. message, { { "exit", common.EXIT.failed }, { "hint", hint } },
    "hscode: internal error: " .. message .. "\n" .. hint .. "\n")
  return common.EXIT.failed
end

--- Runs the command line and exits with its status (bin/hscode).
-- @tparam table argv
-- @tparam[opt] table sys as for `run`
function M.main(argv, sys)
  sys = default_sys(sys)
  -- process-wide: only the hscode process itself, never cli.run in a host
  if sys.exit_on_signal == nil then sys.exit_on_signal = avalara.core.sys.exit_on_signal end
  local code = M.run(argv or {}, sys)
  pcall(sys.stdout.flush, sys.stdout)
  return sys.exit(code, true)
end

return M
