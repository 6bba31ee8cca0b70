--- What the `hscode` commands share: failures and exit statuses, option
-- checks, the client the options describe, plain output.
-- @module avalara.cli.common
local avalara = require "avalara"
local json = require "avalara.cli.json"
local countries = require "avalara.country"

local M = {}

--- Exit statuses, the same for every command (docs/cli.md's table): 0 success (rows skipped by
-- `--skip-invalid` too), 1 some requests or items failed, 2 usage or input error, 3 authentication
-- or configuration error (an unknown connection too), 130 interrupted (SIGINT), 143 terminated (SIGTERM).
M.EXIT = { ok = 0, failed = 1, usage = 2, config = 3, sigint = 130, sigterm = 143 }
local EXIT = M.EXIT

-- The library's demo defaults of `local` (`avalara.environments["local"].demo`), the same here.
local demo = avalara.environments["local"].demo
--- The emulator's demo account, used with `--env local` when no credentials are given.
M.DEMO = { account = demo.account_id, license_key = demo.license_key, company = demo.company_id }
--- The emulator URL for `--env local` when neither `--emulator-url` nor `AVALARA_EMULATOR_URL` is set.
M.DEFAULT_EMULATOR_URL = demo.emulator_url

--- The metatable of failures: `{code, message, hint}`, raised by `fail`.
M.Failure = {}

--- Stops the command: "hscode: <message>" (and the hint) on stderr, exit `code`.
-- @int code
-- @string message
-- @tparam[opt] string hint
function M.fail(code, message, hint)
  error(setmetatable({ code = code, message = message, hint = hint }, M.Failure), 0)
end
local fail = M.fail

--- The file store at its default place (`avalara.store.default_path`);
-- without $XDG_*_HOME and $HOME a configuration failure that says
-- what to set (exit 3), never a shared folder.
-- @string kind "cache" or "data"
-- @string name
function M.file_store(kind, name)
  local stores = require "avalara.store"
  local ok, path = pcall(stores.default_path, kind, name)
  if not ok then
    fail(M.EXIT.config, "no private folder for " .. name .. ": neither $XDG_" .. kind:upper() .. "_HOME nor $HOME "
      .. "is set; set one of them")
  end
  return stores.file(path)
end

--- A usage error (exit 2), with a pointer to the command's help.
-- @string message
-- @tparam[opt] string command
function M.usage_error(message, command)
  fail(EXIT.usage, message, "Try 'hscode " .. (command and command .. " " or "") .. "--help'.")
end
local usage_error = M.usage_error

--- The exit status of a request error: authentication and authorization
-- failures say the configuration is wrong (3), others 1.
-- @param err a structured error
-- @treturn int
function M.exit_code_for(err)
  if type(err) == "table" and (err.kind == "oauth" or err.kind == "permission" or err.status == 401
    or err.status == 403) then
    return EXIT.config
  end
  return EXIT.failed
end

--- A hint for a request error: with `--env local`, a connection refused
-- means the emulator is not running where we look for it.
-- @param client the client (or nil)
-- @param err the error
-- @return a hint, or nil
function M.hint_for(client, err)
  if client and client.environment == "local" and type(err) == "table" and err.kind == "transport" then
    return "Is the emulator running at " .. tostring(client.emulator_url) .. "? Start it with 'make emulator' "
      .. "(or emulator/run), or point --emulator-url (AVALARA_EMULATOR_URL) at it."
  end
  return nil
end

--- Fails with `what: err`, the exit status and hint that go with it.
-- @string what
-- @param err
-- @param[opt] client
function M.request_failed(what, err, client)
  fail(M.exit_code_for(err), what .. ": " .. tostring(err), M.hint_for(client, err))
end

--- A variable of the environment (`sys.getenv`), nil when empty.
function M.getenv(sys, name)
  local v = sys.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end
local getenv = M.getenv

--- The positive number of option `name`, or nil; a usage error otherwise.
function M.positive_number(opts, name, command, integer)
  local v = opts[name]
  if v == nil then return nil end
  local n = tonumber(v)
  if not n or n <= 0 or n ~= n or n == math.huge or (integer and n ~= math.floor(n)) then
    usage_error(string.format("--%s must be a positive %s (got '%s')", name:gsub("_", "-"),
      integer and "integer" or "number", v), command)
  end
  return n
end

--- The size in bytes of option `name` (`1048576`, `512K`, `16M`, `1G`: KiB, MiB, GiB), or nil;
-- a usage error otherwise.
function M.size_option(opts, name, command)
  local v = opts[name]
  if v == nil then return nil end
  local digits, unit = tostring(v):match("^(%d+)([KkMmGg]?)$")
  local n = digits and tonumber(digits) * ({ [""] = 1, k = 1024, m = 1024 ^ 2, g = 1024 ^ 3 })[unit:lower()]
  if not n or n < 1 or n > 2 ^ 40 then
    usage_error(string.format("--%s must be a size in bytes, such as 1048576, 512K or 16M (got '%s')",
      name:gsub("_", "-"), v), command)
  end
  return math.floor(n)
end

-- The command refuses a code that is no ISO 3166-1 country before any request.
local KNOWN = { known = true }

--- The `--country` option upper-cased, checked (`avalara.country`: two letters, a known
-- code, "did you mean GB?" for UK).
function M.country_option(opts, command, required)
  local c = opts.country
  if c == nil then
    if required then usage_error("--country is required (two letters, such as US)", command) end
    return nil
  end
  local code, why = countries.check(c, KNOWN)
  if not code then usage_error(why, command) end
  return code
end

--- A list option of countries (`--countries US,DE`, commas or spaces) upper-cased, without
-- repeats, each checked as `country_option`'s.
function M.countries_option(opts, command, required, name)
  name = name or "countries"
  local raw = opts[name]
  if raw == nil then
    if required then usage_error("--" .. name .. " is required (such as US,DE,JP)", command) end
    return nil
  end
  local list, seen = {}, {}
  for c in raw:gmatch("[^,%s]+") do
    local code, why = countries.check(c, KNOWN)
    if not code then usage_error(why, command) end
    if not seen[code] then seen[code] = true; list[#list + 1] = code end
  end
  if #list == 0 then usage_error("--" .. name .. " needs at least one country", command) end
  return list
end

-- ---------------------------------------------------------------- secrets

--- The secret options: `{option, flag, variable}`. Each has a file twin
-- (`--license-key-file FILE`, `-` for stdin) that keeps it out of argv.
M.SECRETS = { { "license_key", "--license-key", "AVALARA_LICENSE_KEY" },
  { "client_secret", "--client-secret", "AVALARA_CLIENT_SECRET" } }

--- The largest secret file read, in bytes.
M.SECRET_FILE_MAX = 64 * 1024

-- The secret held by `path` (`-`: stdin) for option `flag`: its text without
-- one trailing line end. Failures name the file, never its content.
local function read_secret(sys, path, flag)
  local text, err
  if path == "-" then
    text, err = sys.stdin:read(M.SECRET_FILE_MAX + 1)
    if text == nil and err == nil then text = "" end
    path = "stdin"
  else
    local st = require("avalara.cli.uv").fs_stat(path)
    if st and st.type == "directory" then
      fail(EXIT.config, "cannot read " .. flag .. " " .. path .. ": it is a directory")
    end
    local f, oerr = io.open(path, "rb")
    if not f then fail(EXIT.config, "cannot read " .. flag .. " " .. tostring(oerr)) end
    text, err = f:read(M.SECRET_FILE_MAX + 1)
    f:close()
    if text == nil and err == nil then text = "" end
    -- a regular file that the group or others may read (mode bits 040, 004): said, not refused
    -- (container secrets are often mounted 0444 or 0644)
    if st and st.type == "file" and (math.floor(st.mode / 32) % 2 == 1 or math.floor(st.mode / 4) % 2 == 1) then
      sys.stderr:write(string.format("hscode: warning: %s %s can be read by other users (mode %03o); "
        .. "chmod 600 it\n", flag, path, st.mode % 512))
    end
  end
  if text == nil then fail(EXIT.config, "cannot read " .. flag .. " " .. path .. ": " .. tostring(err)) end
  if #text > M.SECRET_FILE_MAX then
    fail(EXIT.config, string.format("%s %s is larger than %d bytes: not a secret", flag, path, M.SECRET_FILE_MAX))
  end
  text = text:gsub("\r?\n$", "", 1)
  if text == "" then fail(EXIT.config, flag .. " " .. path .. " is empty") end
  if text:find("[%c]") then
    fail(EXIT.config, flag .. " " .. path .. " must hold the secret alone, on one line (it has a line break "
      .. "or a control character)")
  end
  return text
end
--- Reads a secret file as `--license-key-file` does (`-`: stdin): its one line, or a failure naming `flag`.
M.read_secret = read_secret

--- Settles the secret options before a command runs: a secret given on
-- the command line (visible to every local user in `ps`, kept in shell
-- history) is used with a warning; `--license-key-file FILE` (`-`: stdin)
-- and `--client-secret-file FILE` read it from a file instead, into
-- `opts.license_key` and `opts.client_secret`.
-- @param sys the command's system table
-- @tparam table opts the parsed options (changed)
-- @tparam[opt] table args the command's arguments (a `-` there takes stdin)
function M.secret_options(sys, opts, args)
  local stdin_for
  for _, secret in ipairs(M.SECRETS) do
    local name, flag, var = secret[1], secret[2], secret[3]
    local path = opts[name .. "_file"]
    if opts[name] ~= nil and path ~= nil then usage_error(flag .. " and " .. flag .. "-file: give one of them") end
    if opts[name] ~= nil then
      sys.stderr:write("hscode: warning: ", flag, " on the command line is visible to other local users (ps) "
        .. "and may stay in your shell history; use ", flag, "-file FILE (- for stdin) or ", var, "\n")
    elseif path ~= nil then
      if path == "-" then
        if stdin_for then usage_error(stdin_for .. " - and " .. flag .. "-file -: stdin holds one of them only") end
        stdin_for = flag .. "-file -"
        for _, a in ipairs(args or {}) do
          if a == "-" then usage_error(stdin_for .. ": stdin cannot hold both the secret and the input") end
        end
      end
      opts[name] = read_secret(sys, path, flag .. "-file")
    end
  end
end

--- The client the options and environment describe (with `--connection`, the
-- partner connection's). Commands that do not need a company (token, lookup)
-- make a client without one.
-- @param sys the command's system table
-- @tparam table opts the parsed options
-- @tparam boolean needs_company
-- @tparam[opt] function on_token
function M.make_client(sys, opts, needs_company, on_token)
  local on_request
  if opts.verbose then
    on_request = function(info)
      require("avalara.cli.log").emit(sys, "debug", "request", nil, { { "method", info.method }, { "url", info.url },
        { "status", info.status }, { "error_kind", info.error_kind }, { "duration", info.duration } },
        string.format("hscode: %s %s -> %s (%.3f s)\n", info.method, info.url,
        tostring(info.status or info.error_kind), info.duration))
    end
  end
  if opts.connection then
    return require("avalara.cli.partner").client(sys, opts, M, needs_company, { on_request = on_request })
  end
  local environment = opts.env or getenv(sys, "AVALARA_ENVIRONMENT") or "production"
  if not avalara.environments[environment] then
    fail(opts.env and EXIT.usage or EXIT.config, "unknown environment '" .. environment
      .. "' (production, sandbox or local)")
  end
  local account = opts.account or getenv(sys, "AVALARA_ACCOUNT_ID")
  local key = opts.license_key or getenv(sys, "AVALARA_LICENSE_KEY")
  local company = opts.company or getenv(sys, "AVALARA_COMPANY_ID")
  local emulator_url = environment == "local" and (opts.emulator_url or getenv(sys, "AVALARA_EMULATOR_URL")
    or M.DEFAULT_EMULATOR_URL) or nil
  -- no license key: the login of hscode login, if one is kept (cli/login.lua)
  local login = require "avalara.cli.login"
  local source, why
  if not key then source, why = login.source(sys, login.token_url(environment, emulator_url or "")) end
  if source then account = nil end
  if environment == "local" and not account and not key and not source then
    account, key, company = M.DEMO.account, M.DEMO.license_key, company or M.DEMO.company
  end
  if not account and not source then
    fail(EXIT.config, why == "expired" and "the login of hscode login has expired: run hscode login again "
      .. "(or set AVALARA_LICENSE_KEY)" or "no account ID: set AVALARA_ACCOUNT_ID (or use --account)")
  end
  if not key and not source then fail(EXIT.config, "no license key: set AVALARA_LICENSE_KEY (or run hscode login)") end
  if not company and needs_company then
    fail(EXIT.config, "no company ID: set AVALARA_COMPANY_ID (or use --company)")
  end
  local ok, client = pcall(avalara.new, {
    environment = environment, account_id = account, license_key = key, company_id = company,
    token_source = source, emulator_url = emulator_url,
    cafile = opts.cafile or getenv(sys, "AVALARA_CAFILE"),
    timeout = M.positive_number(opts, "timeout"),
    store = sys.store(), on_request = on_request, on_token = on_token,
    on_warning = function(message) sys.stderr:write("hscode: warning: ", message, "\n") end,
  })
  if not ok then fail(EXIT.config, (tostring(client):gsub("^.-avalara%.new: ", ""))) end
  return client
end

--- Prints a value as one line of JSON on stdout (`avalara.cli.json`: keys in
-- `first`'s order then sorted, `/` unescaped).
function M.write_json(sys, value, first)
  sys.stdout:write(json.encode(value, first), "\n")
end

--- Prints `{label, value}` pairs, one a line, skipping nil values.
function M.write_fields(sys, fields)
  for _, f in ipairs(fields) do
    if f[2] ~= nil then sys.stdout:write(string.format("%-13s%s\n", f[1], tostring(f[2]))) end
  end
end

--- Seconds as `1m05s` (or `42s`).
-- @number s
-- @treturn string
function M.duration(s)
  s = math.max(0, math.floor(s + 0.5))
  if s < 60 then return s .. "s" end
  if s < 3600 then return string.format("%dm%02ds", math.floor(s / 60), s % 60) end
  return string.format("%dh%02dm", math.floor(s / 3600), math.floor((s % 3600) / 60))
end

return M
