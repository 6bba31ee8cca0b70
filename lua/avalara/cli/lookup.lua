--- `hscode lookup CODE --country CC`: an HS code's hierarchy.
-- @module avalara.cli.lookup
local common = require "avalara.cli.common"

local M = {}

--- The command's name.
M.name = "lookup"
--- What it does, for `hscode --help`.
M.summary = "show an HS code's hierarchy, chapter down to the code"

--- The command's own options.
M.options = { { "country", "CC" }, { "children" }, { "json" } }

--- Its help text.
M.help = [[
Usage: hscode lookup CODE --country CC [options]

Shows an HS code's hierarchy in a country's tariff: its chapter, heading
and so on down to the code itself. CODE may be written with dots (6109.10).

  --country CC         the country, two letters (required)
  --children           list the codes directly below it too
  --json               print {hierarchy, children} as JSON

Example: hscode lookup 610910 --country US
]]

--- Runs it.
function M.run(sys, opts, args)
  if #args ~= 1 then common.usage_error("lookup needs one HS code", "lookup") end
  -- Dots are for reading ("6109.10"); the service's codes have none.
  local code = args[1]:gsub("%.", "")
  if not code:match("^%w+$") then
    common.usage_error("bad HS code '" .. args[1] .. "' (digits or letters, dots allowed, such as 6109.10)", "lookup")
  end
  local country = common.country_option(opts, "lookup", true)
  local client = common.make_client(sys, opts, false)
  local chain, err = client:hierarchy(country, code)
  if not chain and err.status ~= 404 then common.request_failed("lookup failed", err, client) end
  if not chain or #chain == 0 then
    common.fail(common.EXIT.failed, "no HS code " .. code .. " in the tariff of " .. country)
  end
  local children
  if opts.children then
    local list, cerr = client:hs_codes(country, code)
    if not list then common.request_failed("lookup failed", cerr, client) end
    children = list
  end
  if opts.json then return common.write_json(sys, { hierarchy = chain, children = children }) end
  -- The root record (parentHsCodeId 0) is left out; branch records (no
  -- code, informational) are shown without one.
  local depth = 0
  local function line(entry)
    sys.stdout:write(string.format("%-16s%s\n", string.rep("  ", depth) .. entry.hsCode, entry.description))
  end
  for _, entry in ipairs(chain) do
    if entry.parentHsCodeId ~= 0 then
      line(entry)
      depth = depth + 1
    end
  end
  for _, entry in ipairs(children or {}) do line(entry) end
end

return M
