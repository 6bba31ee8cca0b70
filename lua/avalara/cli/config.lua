--- The `hscode` config file: profiles of global options.
--
-- `$XDG_CONFIG_HOME/hscode/config` (else `~/.config/hscode/config`), INI-like
-- as `aws`'s: `[default]` (used when no profile is named), `[profile NAME]`
-- (or `[NAME]`), then `key = value` lines whose keys are the global options'
-- long names (`env`, `account`, `company`, `emulator-url`, `client-id`, ...;
-- `verbose = true` for a flag). `#` and `;` start a comment line. The
-- profile is `--profile NAME`, else `$HSCODE_PROFILE`, else `default` (when
-- the file has one). Precedence: an option on the command line, then its
-- environment variable, then the profile, then the default.
--
-- A file that holds a license key or a client secret must be the user's own,
-- not a symbolic link, readable by the user only (0600), in a folder of the
-- user's that only the user can use (0700: `avalara.private`); else it is refused.
-- Any other must be the user's (or root's) and not writable by others.
-- @module avalara.cli.config
local private = require "avalara.private"

local M = {}

--- The keys a profile may set: option key -> `{variable, kind}` (kind: "flag", "secret",
-- "secret_file", "number", or a list of the allowed values; nil: any text).
M.KEYS = {
  env = { "AVALARA_ENVIRONMENT", { "production", "sandbox", "local" } },
  account = { "AVALARA_ACCOUNT_ID" },
  license_key = { "AVALARA_LICENSE_KEY", "secret" },
  license_key_file = { nil, "secret_file" },
  company = { "AVALARA_COMPANY_ID" },
  emulator_url = { "AVALARA_EMULATOR_URL" },
  cafile = { "AVALARA_CAFILE" },
  timeout = { nil, "number" },
  verbose = { nil, "flag" },
  connection = {},
  client_id = { "AVALARA_CLIENT_ID" },
  client_secret = { "AVALARA_CLIENT_SECRET", "secret" },
  client_secret_file = { nil, "secret_file" },
  flow = { "AVALARA_FLOW", { "2012", "identity" } },
  quiet = { nil, "flag" },
  no_progress = { nil, "flag" },
  log_format = { nil, { "text", "json" } },
}

-- The secret a file key reads, and the key of the secret itself.
local SECRET_OF = { license_key_file = "license_key", client_secret_file = "client_secret" }

local FLAGS = { ["true"] = true, yes = true, on = true, ["1"] = true,
  ["false"] = false, no = false, off = false, ["0"] = false }

--- Where the config file is: `$XDG_CONFIG_HOME/hscode/config`, else `$HOME/.config/hscode/config`,
-- else nil.
-- @tparam function getenv
-- @treturn string|nil
function M.path(getenv)
  local base = getenv("XDG_CONFIG_HOME")
  if base == nil or base:sub(1, 1) ~= "/" then
    local home = getenv("HOME")
    if home == nil or home == "" then return nil end
    base = home .. "/.config"
  end
  return base .. "/hscode/config"
end

local function names(list)
  local out = {}
  for _, k in ipairs(list) do out[#out + 1] = (k:gsub("_", "-")) end
  return table.concat(out, ", ")
end

local function known_keys()
  local list = {}
  for k in pairs(M.KEYS) do list[#list + 1] = k end
  table.sort(list)
  return names(list)
end

-- A value of `key` checked: the value to use (a boolean for a flag), or nil and why not.
local function value_of(key, value)
  local kind = M.KEYS[key][2]
  if kind == "flag" then
    local b = FLAGS[value:lower()]
    if b == nil then return nil, "must be true or false (got '" .. value .. "')" end
    return b
  elseif kind == "number" then
    local n = tonumber(value)
    if not n or n <= 0 or n ~= n or n == math.huge then
      return nil, "must be a positive number (got '" .. value .. "')"
    end
    return value
  elseif type(kind) == "table" then
    for _, v in ipairs(kind) do
      if v == value then return value end
    end
    return nil, "must be " .. table.concat(kind, ", ", 1, #kind - 1) .. " or " .. kind[#kind] .. " (got '"
      .. value .. "')"
  end
  if value == "" then return nil, "has no value" end
  return value
end

--- Parses the text of a config file: `{profiles = {name -> {key -> {value, line}}}, secrets = bool}`,
-- or nil and a message "PATH:LINE: problem".
-- @string text
-- @string path for the messages
function M.parse(text, path)
  local profiles, at, secrets = {}, {}, false
  local current
  local n = 0
  for line in (text:gsub("\r?\n$", "") .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local function bad(why) return nil, string.format("%s:%d: %s", path, n, why) end
    line = line:gsub("\r$", ""):match("^%s*(.-)%s*$")
    if line == "" or line:match("^[#;]") then -- luacheck: ignore 542
      -- blank or comment
    elseif line:match("^%[") then
      local inner = line:match("^%[%s*(.-)%s*%]$")
      local name = inner and (inner:match("^profile%s+([%w._-]+)$") or inner:match("^([%w._-]+)$"))
      if not name then
        return bad("malformed section '" .. line .. "': expected [default], [profile NAME] or [NAME]")
      end
      if profiles[name] then
        return bad("profile '" .. name .. "' is defined twice (first at line " .. at[name] .. ")")
      end
      profiles[name], at[name], current = {}, n, name
    else
      local k, v = line:match("^([%w_-]+)%s*=%s*(.-)$")
      if not k then return bad("malformed line: expected 'key = value', '[profile NAME]' or a # comment") end
      local key = k:gsub("%-", "_")
      if not M.KEYS[key] then return bad("unknown key '" .. k .. "' (known: " .. known_keys() .. ")") end
      if not current then return bad("'" .. k .. "' comes before any [profile NAME] section") end
      local section = profiles[current]
      if section[key] then return bad("'" .. k .. "' is set twice in profile '" .. current .. "'") end
      local value, why = value_of(key, v)
      if value == nil then return bad(k .. " " .. why) end
      if M.KEYS[key][2] == "secret" then secrets = true end
      section[key] = { value, n }
    end
  end
  return { profiles = profiles, secrets = secrets }
end

local function read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text, rerr = f:read(1024 * 1024 + 1)
  f:close()
  if text == nil and rerr then return nil, path .. ": " .. tostring(rerr) end
  if text and #text > 1024 * 1024 then return nil, path .. " is larger than 1 MiB: not a config file" end
  return text or ""
end

--- Applies the profile to the parsed options: keys with no environment variable go into
-- `opts` when not given; the others into the returned table (variable -> value) that a
-- `getenv` consults after the environment. A `*-file` key is read (relative to the config's
-- folder) when neither its option nor its variable gives the secret.
-- @tparam table sys the command's system table (`getenv`: the real environment)
-- @tparam table opts the parsed options (changed)
-- @tparam table cli `avalara.cli.common` (`fail`, `EXIT`, `getenv`, `read_secret`)
-- @treturn table variable -> value (empty without a config file or profile)
function M.apply(sys, opts, cli)
  local overlay = {}
  local function getenv(name) return cli.getenv(sys, name) end
  local named = opts.profile or getenv("HSCODE_PROFILE")
  local how = opts.profile and "--profile" or "HSCODE_PROFILE"
  local path = M.path(getenv)
  local usage = cli.EXIT.usage
  if not path then
    if named then cli.fail(usage, "no config file for " .. how .. " " .. named .. ": neither $XDG_CONFIG_HOME "
      .. "nor $HOME is set") end
    return overlay
  end
  local text, rerr = read(path)
  if not text then
    if named then
      cli.fail(usage, "unknown profile '" .. named .. "' (" .. how .. "): cannot read the config file "
        .. tostring(rerr))
    end
    -- no config file: nothing to apply (another reason, a folder or no permission: said)
    if tostring(rerr):find("No such file", 1, true) then return overlay end
    cli.fail(usage, "cannot read the config file " .. tostring(rerr))
  end
  local config, perr = M.parse(text, path)
  if not config then cli.fail(usage, perr) end
  if config.secrets then
    local ok, err = private.file(path, 63) -- 0077: the user's only
    if ok then ok, err = private.folder(M.dirname(path), { mask = 63 }) end -- 0700: a secret's folder is private
    if not ok then
      cli.fail(cli.EXIT.config, "refusing the config file " .. path .. ", which holds a secret: " .. err.message)
    end
  else
    -- without a secret (a link is fine) still the user's own, and only theirs to change: it says where the
    -- credentials of the environment go (`env`, `emulator-url`)
    local st = require("avalara.cli.uv").fs_stat(path)
    local me = require("avalara.core").sys.euid()
    local writable = st and (math.floor(st.mode / 16) % 2 == 1 or math.floor(st.mode / 2) % 2 == 1) -- 0020, 0002
    if st and (st.uid ~= me and st.uid ~= 0 or writable) then
      cli.fail(cli.EXIT.config, string.format("refusing the config file %s: %s (mode %04o); it says where your "
        .. "credentials are sent: chmod go-w it, or use a file of your own", path, st.uid ~= me and st.uid ~= 0
        and "it belongs to user id " .. st.uid .. ", not to you" or "others can change it", st.mode % 4096))
    end
  end
  local name = named or "default"
  local profile = config.profiles[name]
  if not profile then
    if not named then return overlay end
    local list = {}
    for k in pairs(config.profiles) do list[#list + 1] = k end
    table.sort(list)
    cli.fail(usage, "unknown profile '" .. name .. "' (" .. how .. ") in " .. path .. " (profiles: "
      .. (#list > 0 and table.concat(list, ", ") or "none") .. ")")
  end
  for key, entry in pairs(profile) do
    local value, line = entry[1], entry[2]
    local var, kind = M.KEYS[key][1], M.KEYS[key][2]
    if kind == "secret_file" then
      local secret = SECRET_OF[key]
      local svar = M.KEYS[secret][1]
      if profile[secret] then
        cli.fail(usage, string.format("%s:%d: %s and %s in one profile: give one of them", path, line,
          (key:gsub("_", "-")), (secret:gsub("_", "-"))))
      end
      if opts[secret] == nil and getenv(svar) == nil then
        if value == "-" then cli.fail(usage, string.format("%s:%d: %s cannot be stdin", path, line,
          (key:gsub("_", "-")))) end
        if value:sub(1, 1) ~= "/" then value = M.dirname(path) .. "/" .. value end
        overlay[svar] = cli.read_secret(sys, value, (key:gsub("_", "-")) .. " (" .. path .. ":" .. line .. ")")
      end
    elseif var then
      overlay[var] = value
    elseif opts[key] == nil and value ~= false then
      opts[key] = value
    end
  end
  return overlay
end

--- A `getenv` that gives the environment's value, else (unset or empty) the profile's.
-- @tparam function real the environment's `getenv`
-- @tparam table overlay variable -> value (`apply`'s)
-- @treturn function
function M.getenv(real, overlay)
  if next(overlay) == nil then return real end
  return function(name)
    local v = real(name)
    if (v == nil or v == "") and overlay[name] ~= nil then return overlay[name] end
    return v
  end
end

--- The folder part of a path (`avalara.private.dirname`).
M.dirname = private.dirname

return M
