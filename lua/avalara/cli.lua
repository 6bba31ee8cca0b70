--- The `hscode` command (bin/hscode): classify products, look up HS codes
-- and show the access token, from a shell.
--
--    hscode classify "men's cotton t-shirt" --country US
--    hscode batch products.csv --country US --out results.csv
--    hscode lookup 610910 --country US
--    hscode token
--
-- Everything the command touches comes through `sys` (stdout, stderr,
-- getenv, isatty, exit, store), so it runs in-process in specs as well.
-- Exit status: 0 success, 1 a request or some items failed, 2 usage or
-- input error, 3 authentication or configuration error.
-- @module avalara.cli
local avalara = require "avalara"
local descriptions = require "avalara.descriptions"
local partner_cli = require "avalara.cli.partner"
local cjson = require "cjson"

local M = {}

--- Exit statuses: 0 success, 1 some requests or items failed, 2 usage or input error,
-- 3 authentication or configuration error.
M.EXIT = { ok = 0, failed = 1, usage = 2, config = 3 }
local EXIT = M.EXIT

--- The emulator's demo account, used with `--env local` when no credentials are given.
M.DEMO = { account = "2000000001", license_key = "DEMO-LICENSE-KEY-0001", company = "1001" }
--- The emulator URL for `--env local` when neither `--emulator-url` nor `AVALARA_EMULATOR_URL` is set.
M.DEFAULT_EMULATOR_URL = "http://127.0.0.1:18080"

-- ------------------------------------------------------------------ failures

-- A failure the command reports as "hscode: <message>" and exits with `code`.
local Failure = {}

local function fail(code, message, hint)
  error(setmetatable({ code = code, message = message, hint = hint }, Failure), 0)
end

local function usage_error(message, command)
  fail(EXIT.usage, message, "Try 'hscode " .. (command and command .. " " or "") .. "--help'.")
end

-- Authentication and authorization failures say the configuration is wrong.
local function exit_code_for(err)
  if type(err) == "table" and (err.kind == "oauth" or err.status == 401 or err.status == 403) then
    return EXIT.config
  end
  return EXIT.failed
end

local function request_failed(what, err)
  fail(exit_code_for(err), what .. ": " .. tostring(err))
end

-- ------------------------------------------------------------------ CSV

--- Parses CSV text (RFC 4180: quoted fields with commas, quotes and line
-- breaks; CRLF, LF or CR line ends; a leading UTF-8 BOM is dropped).
-- @string text
-- @return an array of records (arrays of strings, each with `line`, where
-- it starts), or nil, message
function M.csv_parse(text)
  text = text:gsub("^\239\187\191", "")
  local records, n, i, line = {}, #text, 1, 1
  if n == 0 then return records end
  local record = { line = line }
  while true do
    local field
    if text:sub(i, i) == '"' then
      local parts, k = {}, i + 1
      while true do
        local j = text:find('"', k, true)
        if not j then return nil, string.format("line %d: a quoted field is never closed", record.line) end
        parts[#parts + 1] = text:sub(k, j - 1)
        if text:sub(j + 1, j + 1) ~= '"' then i = j + 1; break end
        parts[#parts + 1] = '"'
        k = j + 2
      end
      field = table.concat(parts)
      line = line + select(2, field:gsub("\n", ""))
      if not text:sub(i, i):match("^[,\r\n]?$") then
        return nil, string.format("line %d: unexpected text after a closing quote", line)
      end
    else
      local j = text:find("[,\r\n]", i) or n + 1
      field = text:sub(i, j - 1)
      i = j
    end
    record[#record + 1] = field
    local sep = text:sub(i, i)
    if sep == "," then
      i = i + 1
    else
      records[#records + 1] = record
      if sep == "" then break end
      i = i + ((sep == "\r" and text:sub(i + 1, i + 1) == "\n") and 2 or 1)
      if i > n then break end
      line = line + 1
      record = { line = line }
    end
  end
  return records
end

local function csv_field(v)
  v = tostring(v)
  if v:find('[,"\r\n]') or v:find("^%s") or v:find("%s$") then
    return '"' .. v:gsub('"', '""') .. '"'
  end
  return v
end

--- Formats records (arrays of strings or numbers) as CSV with CRLF line
-- ends, quoting where needed.
-- @tparam table records
-- @treturn string
function M.csv_format(records)
  local lines = {}
  for r, record in ipairs(records) do
    local fields = {}
    for c, v in ipairs(record) do fields[c] = csv_field(v) end
    lines[r] = table.concat(fields, ",")
  end
  return table.concat(lines, "\r\n") .. "\r\n"
end

-- ------------------------------------------------------------------ items

-- Column and key names, compared without case, spaces, dashes and underscores.
local ITEM_KEYS = { itemcode = "itemCode", description = "description", summary = "summary",
  itemgroup = "itemGroup", country = "country", countryofdestination = "country" }

local function item_key(name)
  return ITEM_KEYS[(tostring(name):lower():gsub("[%s_%-]", ""))]
end

local function blank(record)
  for _, v in ipairs(record) do if v:find("%S") then return false end end
  return true
end

-- Items from CSV text: {itemCode, description, summary?, country?, where}.
local function csv_items(text, name)
  local records, err = M.csv_parse(text)
  if not records then return nil, name .. ": " .. err end
  local header = records[1]
  if not header then return nil, name .. ": the file is empty" end
  local columns = {}
  for c, title in ipairs(header) do
    local key = item_key(title)
    if key and not columns[key] then columns[key] = c end
  end
  for _, required in ipairs { "itemCode", "description" } do
    if not columns[required] then
      return nil, string.format("%s: no '%s' column (the header has: %s)", name, required,
        table.concat(header, ", "))
    end
  end
  local items = {}
  for r = 2, #records do
    local record = records[r]
    if not blank(record) then
      local item = { where = name .. " line " .. record.line }
      for key, c in pairs(columns) do
        local v = record[c]
        if v and v ~= "" then item[key] = v end
      end
      items[#items + 1] = item
    end
  end
  return items
end

-- Items from a JSON array of objects (keys as for the CSV columns).
local function json_items(text, name)
  local ok, decoded = pcall(cjson.decode, text)
  if not ok then return nil, name .. ": not valid JSON (" .. tostring(decoded):gsub("^.-: ", "") .. ")" end
  if type(decoded) ~= "table" or (next(decoded) ~= nil and decoded[1] == nil) then
    return nil, name .. ": expected a JSON array of items"
  end
  local items = {}
  for i, entry in ipairs(decoded) do
    local where = name .. " item " .. i
    if type(entry) ~= "table" then return nil, where .. ": not an object" end
    local item = { where = where }
    for k, v in pairs(entry) do
      local key = item_key(k)
      if type(v) == "number" then v = string.format("%.14g", v) end
      if key and type(v) == "string" and v ~= "" then item[key] = v end
    end
    items[#items + 1] = item
  end
  return items
end

local function is_json(path)
  return path:lower():match("%.json$") ~= nil
end

--- Reads the items of a CSV or JSON file (by extension) and checks them
-- (`avalara.item.check`: itemCode and description present, lengths, ...), a
-- two-letter country on every item (its own, else `default_country`).
-- @string path
-- @tparam[opt] string default_country
-- @return an array of items `{itemCode, description, summary?, countryOfDestination}`, or nil, message
function M.read_items(path, default_country)
  local f, oerr = io.open(path, "rb")
  if not f then return nil, "cannot read " .. tostring(oerr) end
  local text, rerr = f:read("*a")
  f:close()
  if not text then return nil, "cannot read " .. path .. ": " .. tostring(rerr) end
  local items, err = (is_json(path) and json_items or csv_items)(text, path)
  if not items then return nil, err end
  if #items == 0 then return nil, path .. ": no items" end
  for _, item in ipairs(items) do
    for _, required in ipairs { "itemCode", "description" } do
      if not item[required] then return nil, item.where .. ": " .. required .. " is empty" end
    end
    local ok, why = avalara.item.check { itemCode = item.itemCode, description = item.description,
      summary = item.summary, itemGroup = item.itemGroup }
    if not ok then return nil, item.where .. ": " .. why end
    local country = item.country or default_country
    if not country then
      return nil, item.where .. ": no country (add a country column or use --country)"
    end
    if not country:match("^%a%a$") then
      return nil, string.format("%s: bad country code '%s' (two letters, such as US)", item.where, country)
    end
    item.countryOfDestination, item.country = country:upper(), nil
  end
  return items
end

-- ------------------------------------------------------------------ results

-- One output row: the item and what became of it (no secret: errors carry
-- their kind, status, code, message and request id only); the code's
-- description comes from `describe(country, code)`.
local function result_row(item, result, describe)
  local row = { itemCode = item.itemCode, description = item.description,
    country = item.countryOfDestination }
  if avalara.core.is_error(result) then
    row.status = "FAILED"
    row.error = { kind = result.kind, status = result.status, code = result.code,
      message = result.message, requestId = result.request_id }
  else
    row.status, row.hsCode = result.status, result.hsCode
    row.hsCodeDescription = describe and result.hsCode and describe(item.countryOfDestination, result.hsCode) or nil
    row.resolution, row.id = result.resolution, result.id
  end
  return row
end

local CSV_COLUMNS = { "itemCode", "description", "country", "status", "hsCode", "hsCodeDescription",
  "resolution", "id", "errorKind", "errorStatus", "errorCode", "errorMessage", "requestId" }

local function csv_results(rows)
  local records = { CSV_COLUMNS }
  for r, row in ipairs(rows) do
    local e = row.error or {}
    local flat = { errorKind = e.kind, errorStatus = e.status, errorCode = e.code, errorMessage = e.message,
      requestId = e.requestId }
    local fields = {}
    for c, name in ipairs(CSV_COLUMNS) do
      local v = row[name]
      if v == nil then v = flat[name] end
      fields[c] = v == nil and "" or v
    end
    records[r + 1] = fields
  end
  return M.csv_format(records)
end

local function json_results(rows)
  local lines = {}
  for r, row in ipairs(rows) do lines[r] = "  " .. cjson.encode(row) end
  return "[\n" .. table.concat(lines, ",\n") .. "\n]\n"
end

-- Cuts `s` to `width` characters (UTF-8 aware), marking the cut with "...".
local function clip(s, width)
  local chars = {}
  for ch in s:gmatch("[^\128-\191][\128-\191]*") do chars[#chars + 1] = ch end
  if #chars <= width then return s end
  return table.concat(chars, "", 1, math.max(0, width - 3)) .. "..."
end

local function table_results(rows, width)
  local item_w, status_w = #"ITEM", #"STATUS"
  for _, row in ipairs(rows) do
    item_w = math.max(item_w, math.min(#row.itemCode, 24))
    status_w = math.max(status_w, #row.status)
  end
  local fmt = "%-" .. item_w .. "s  %-8s  %-" .. status_w .. "s  %s"
  local text_w = math.max(20, width - item_w - status_w - 14)
  local lines = { (fmt:format("ITEM", "HS CODE", "STATUS", "DESCRIPTION"):gsub("%s+$", "")) }
  for _, row in ipairs(rows) do
    local text = row.hsCodeDescription or row.resolution or (row.error and row.error.message) or ""
    lines[#lines + 1] = fmt:format(clip(row.itemCode, 24), row.hsCode or "-", row.status, clip(text, text_w))
  end
  return table.concat(lines, "\n") .. "\n"
end

--- Result writers by output format: `formats[name](rows) -> string`.
M.formats = { csv = csv_results, json = json_results }

--- The results of a batch as output rows (tables with itemCode, description,
-- country, status, hsCode, hsCodeDescription, resolution, id, error).
-- @tparam table items as returned by `read_items`
-- @tparam table results aligned with `items`: models or errors
-- @tparam[opt] function describe `(country, hsCode) -> description | nil` (the
-- classification models carry no description)
-- @treturn table rows
function M.result_rows(items, results, describe)
  local rows = {}
  for i, item in ipairs(items) do rows[i] = result_row(item, results[i], describe) end
  return rows
end

-- Writes `text` to `path` atomically: into a temporary file beside it, then renamed.
local function open_atomic(path)
  local tmp = string.format("%s.tmp-%d-%d", path, os.time(), math.random(1, 1e9))
  local f, err = io.open(tmp, "wb")
  if not f then return nil, "cannot write " .. path .. ": " .. tostring(err):gsub("^[^:]*: ", "") end
  return {
    commit = function(text)
      local ok, werr = f:write(text)
      f:close()
      if ok then ok, werr = os.rename(tmp, path) end
      if not ok then os.remove(tmp); return nil, "cannot write " .. path .. ": " .. tostring(werr) end
      return true
    end,
    abandon = function()
      f:close()
      os.remove(tmp)
    end,
  }
end

-- ------------------------------------------------------------------ progress

-- Reports batch progress on stderr: a bar redrawn in place on a terminal,
-- else a plain line at every tenth of the way.
local function progress(sys, total)
  local err, tty, step = sys.stderr, sys.isatty(2), -1
  local function update(done, failed)
    if tty then
      local filled = math.floor(30 * done / total)
      err:write(string.format("\r[%s%s] %d/%d  %d failed\27[K", string.rep("#", filled),
        string.rep(".", 30 - filled), done, total, failed))
      if done == total then err:write("\n") end
    elseif math.floor(10 * done / total) > step then
      step = math.floor(10 * done / total)
      err:write(string.format("hscode: %d/%d done, %d failed\n", done, total, failed))
    end
    err:flush()
  end
  update(0, 0)
  return update
end

-- ------------------------------------------------------------------ options

-- Options every command takes: name -> {metavar}, or {} for a flag.
local GLOBAL_OPTIONS = {
  env = { "NAME" }, account = { "ID" }, ["license-key"] = { "KEY" }, company = { "ID" },
  ["emulator-url"] = { "URL" }, cafile = { "FILE" }, timeout = { "SECONDS" },
  verbose = {}, help = {},
  connection = { "ID" }, ["client-id"] = { "ID" }, ["client-secret"] = { "SECRET" }, flow = { "FLOW" },
}
local SHORT = { ["-h"] = "--help", ["-v"] = "--verbose", ["-o"] = "--out" }

-- Splits argv into options (dashes -> underscores) and positional arguments.
-- Global options may come before the command, its own only after it.
local function parse_args(argv, commands)
  local opts, positional, command = {}, {}, nil
  local i, only_positional = 1, false
  while i <= #argv do
    local a = SHORT[argv[i]] or argv[i]
    if only_positional or not a:match("^%-%-?.") then
      if #positional == 0 and commands[a] then command = a end
      positional[#positional + 1] = a
    elseif a == "--" then
      only_positional = true
    else
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:match("^%-%-(.+)$")
      local spec = name and (GLOBAL_OPTIONS[name] or (command and commands[command].options[name]))
      if not spec then usage_error("unknown option '" .. a .. "'", command) end
      if spec[1] == nil then
        if value then usage_error("option '--" .. name .. "' takes no value", command) end
        value = true
      elseif not value then
        i = i + 1
        value = argv[i]
        if value == nil then usage_error("option '--" .. name .. "' needs a value (" .. spec[1] .. ")", command) end
      end
      opts[(name:gsub("%-", "_"))] = value
    end
    i = i + 1
  end
  return opts, positional, command
end

local function positive_number(opts, name, command, integer)
  local v = opts[name]
  if v == nil then return nil end
  local n = tonumber(v)
  if not n or n <= 0 or (integer and n ~= math.floor(n)) then
    usage_error(string.format("--%s must be a positive %s (got '%s')", name:gsub("_", "-"),
      integer and "integer" or "number", v), command)
  end
  return n
end

local function country_option(opts, command, required)
  local c = opts.country
  if c == nil then
    if required then usage_error("--country is required (two letters, such as US)", command) end
    return nil
  end
  if not c:match("^%a%a$") then
    usage_error("bad country code '" .. c .. "' (two letters, such as US)", command)
  end
  return c:upper()
end

-- ------------------------------------------------------------------ client

local function getenv(sys, name)
  local v = sys.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

-- What the commands in lua/avalara/cli/ use of this file.
local shared = { EXIT = EXIT, fail = fail, usage_error = usage_error, request_failed = request_failed,
  getenv = getenv, positive_number = positive_number, DEFAULT_EMULATOR_URL = M.DEFAULT_EMULATOR_URL }

-- The client the options and environment describe (with --connection, the
-- partner connection's). Commands that do not need a company (token, lookup)
-- make a client without one.
local function make_client(sys, opts, needs_company, on_token)
  local on_request
  if opts.verbose then
    on_request = function(info)
      sys.stderr:write(string.format("hscode: %s %s -> %s (%.3f s)\n", info.method, info.url,
        tostring(info.status or info.error_kind), info.duration))
    end
  end
  if opts.connection then
    return partner_cli.client(sys, opts, shared, needs_company, { on_request = on_request })
  end
  local environment = opts.env or getenv(sys, "AVALARA_ENVIRONMENT") or "production"
  if not avalara.environments[environment] then
    fail(opts.env and EXIT.usage or EXIT.config, "unknown environment '" .. environment
      .. "' (production, sandbox or local)")
  end
  local account = opts.account or getenv(sys, "AVALARA_ACCOUNT_ID")
  local key = opts.license_key or getenv(sys, "AVALARA_LICENSE_KEY")
  local company = opts.company or getenv(sys, "AVALARA_COMPANY_ID")
  if environment == "local" and not account and not key then
    account, key, company = M.DEMO.account, M.DEMO.license_key, company or M.DEMO.company
  end
  if not account then fail(EXIT.config, "no account ID: set AVALARA_ACCOUNT_ID (or use --account)") end
  if not key then fail(EXIT.config, "no license key: set AVALARA_LICENSE_KEY") end
  if not company and needs_company then
    fail(EXIT.config, "no company ID: set AVALARA_COMPANY_ID (or use --company)")
  end
  local ok, client = pcall(avalara.new, {
    environment = environment, account_id = account, license_key = key, company_id = company,
    emulator_url = environment == "local" and (opts.emulator_url or getenv(sys, "AVALARA_EMULATOR_URL")
      or M.DEFAULT_EMULATOR_URL) or nil,
    cafile = opts.cafile or getenv(sys, "AVALARA_CAFILE"),
    timeout = positive_number(opts, "timeout"),
    store = sys.store(), on_request = on_request, on_token = on_token,
  })
  if not ok then fail(EXIT.config, (tostring(client):gsub("^.-avalara%.new: ", ""))) end
  return client
end

-- ------------------------------------------------------------------ commands

local function write_json(sys, value)
  sys.stdout:write(cjson.encode(value), "\n")
end
shared.make_client, shared.write_json = make_client, write_json

local function write_fields(sys, fields)
  for _, f in ipairs(fields) do
    if f[2] ~= nil then sys.stdout:write(string.format("%-13s%s\n", f[1], tostring(f[2]))) end
  end
end

local function classify(sys, opts, args)
  local description = table.concat(args, " ")
  if not description:find("%S") then usage_error("classify needs a product description", "classify") end
  local country = country_option(opts, "classify", true)
  local wait = positive_number(opts, "wait", "classify") or 60
  local client = make_client(sys, opts, true)
  local item = { itemCode = opts.item_code or "hscode-cli", description = description, summary = opts.summary,
    itemGroup = opts.item_group }
  local ok, why = avalara.item.check(item)
  if not ok then usage_error(why, "classify") end
  local model, err = client:classify(item, { country = country })
  if model then model, err = client:wait(model, { timeout = wait }) end
  if not model then request_failed("classification failed", err) end
  if opts.json then return write_json(sys, model) end
  write_fields(sys, {
    { "hs code", model.hsCode or "-" },
    { "description", model.hsCode and (descriptions.new(client):get(country, model.hsCode)) },
    { "resolution", model.resolution }, { "status", model.status },
    { "country", model.countryOfDestination }, { "item code", model.item and model.item.itemCode },
    { "id", model.id },
  })
end

-- Classifies the items; returns the results, the summary, the seconds taken
-- and the client.
local function classify_items(sys, opts, items, concurrency, wait)
  local client = make_client(sys, opts, true)
  local tok, err = client:token()
  if not tok then request_failed("cannot get an access token", err) end
  local started, failed = avalara.retry.now(), 0
  local update = progress(sys, #items)
  local results, summary = client:classify_batch(items, { concurrency = concurrency, timeout = wait,
    on_progress = function(done, _, _, result)
      if avalara.core.is_error(result) then failed = failed + 1 end
      update(done, failed)
    end })
  return results, summary, avalara.retry.now() - started, client
end

local function summary_line(rows, summary, elapsed, out_path)
  local unclassified = 0
  for _, row in ipairs(rows) do
    if row.status == "CANNOT_BE_CLASSIFIED" then unclassified = unclassified + 1 end
  end
  return string.format("hscode: %d items: %d classified, %d could not be classified, %d failed (%.1f s)%s\n",
    summary.total, summary.ok - unclassified, unclassified, summary.failed, elapsed,
    out_path and "; results in " .. out_path or "")
end

local function batch(sys, opts, args)
  if #args ~= 1 then usage_error("batch needs exactly one input file (CSV or JSON)", "batch") end
  local country = country_option(opts, "batch", false)
  local concurrency = positive_number(opts, "concurrency", "batch", true)
  local wait = positive_number(opts, "wait", "batch") or 120
  local format = opts.format or (opts.out and (is_json(opts.out) and "json" or "csv")) or "table"
  if format ~= "table" and not M.formats[format] then
    usage_error("--format must be table, csv or json (got '" .. format .. "')", "batch")
  end
  local items, err = M.read_items(args[1], country)
  if not items then fail(EXIT.usage, err) end
  local out
  if opts.out then
    -- Opened before any request, so that a bad path costs no classification.
    out, err = open_atomic(opts.out)
    if not out then fail(EXIT.usage, err) end
  end
  local ok, results, summary, elapsed, client = pcall(classify_items, sys, opts, items, concurrency, wait)
  if not ok then
    if out then out.abandon() end
    error(results, 0)
  end

  local describe = descriptions.new(client)
  local rows = M.result_rows(items, results, function(cc, code) return (describe:get(cc, code)) end)
  local text = format == "table" and table_results(rows, tonumber(getenv(sys, "COLUMNS")) or 100)
    or M.formats[format](rows)
  if out then
    local written, werr = out.commit(text)
    if not written then fail(EXIT.failed, werr) end
  else
    sys.stdout:write(text)
  end
  sys.stderr:write(summary_line(rows, summary, elapsed, opts.out))
  if summary.failed > 0 then return EXIT.failed end
end

local function lookup(sys, opts, args)
  if #args ~= 1 then usage_error("lookup needs one HS code", "lookup") end
  -- Dots are for reading ("6109.10"); the service's codes have none.
  local code = args[1]:gsub("%.", "")
  if not code:match("^%w+$") then
    usage_error("bad HS code '" .. args[1] .. "' (digits or letters, dots allowed, such as 6109.10)", "lookup")
  end
  local country = country_option(opts, "lookup", true)
  local client = make_client(sys, opts, false)
  local chain, err = client:hierarchy(country, code)
  if not chain and err.status ~= 404 then request_failed("lookup failed", err) end
  if not chain or #chain == 0 then fail(EXIT.failed, "no HS code " .. code .. " in the tariff of " .. country) end
  local children
  if opts.children then
    local list, cerr = client:hs_codes(country, code)
    if not list then request_failed("lookup failed", cerr) end
    children = list
  end
  if opts.json then return write_json(sys, { hierarchy = chain, children = children }) end
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

local function token(sys, opts, args)
  if #args > 0 then usage_error("token takes no arguments", "token") end
  local fresh = false
  local client = make_client(sys, opts, false, function() fresh = true end)
  local tok, err = client:token()
  if not tok then request_failed("cannot get an access token", err) end
  local expires_at = tok:expires_at()
  local info = {
    token_type = tok:token_type(), scope = tok:scope(), environment = client.environment,
    account_id = client.account_id, token_url = client.token_url,
    expires_at = expires_at and os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(expires_at)) or nil,
    expires_in = expires_at and math.floor(tok:expires_in()) or nil,
    source = fresh and "new" or "cached",
    access_token = opts.show_secret and tok:access_token() or nil,
  }
  if opts.json then return write_json(sys, info) end
  write_fields(sys, {
    { "type", info.token_type }, { "scope", info.scope },
    { "expires at", info.expires_at and info.expires_at .. " (in " .. info.expires_in .. " s)" or "no expiry" },
    { "source", info.source }, { "store", tostring(client.store) },
    { "account", info.account_id }, { "environment", info.environment }, { "token url", info.token_url },
    { "access token", info.access_token },
  })
end

-- ------------------------------------------------------------------ help

local GLOBAL_HELP = [[
Global options (any command):
  --env NAME           production (default), sandbox or local (the emulator)
                       [AVALARA_ENVIRONMENT]
  --account ID         AvaTax account ID [AVALARA_ACCOUNT_ID]
  --license-key KEY    license key [AVALARA_LICENSE_KEY]. Prefer the variable: a
                       key on the command line is visible to other users (ps)
                       and stays in your shell history
  --company ID         company ID, for classify and batch [AVALARA_COMPANY_ID]
  --emulator-url URL   the emulator, for --env local [AVALARA_EMULATOR_URL]
                       (default http://127.0.0.1:18080)
  --cafile FILE        CA certificates to trust, PEM [AVALARA_CAFILE]
  --timeout SECONDS    limit for each HTTP request (default 30)
  -v, --verbose        log each HTTP exchange on stderr (no secrets)
  -h, --help           show help

Partner connections (see hscode connect):
  --connection ID      call on behalf of this connection (classify, batch,
                       lookup, token) instead of the account's credentials
  --client-id ID       the partner's client id [AVALARA_CLIENT_ID]
  --client-secret S    its secret [AVALARA_CLIENT_SECRET]; prefer the variable
  --flow FLOW          2012 (default) or identity [AVALARA_FLOW]
]]

local MAIN_HELP = [[
Usage: hscode [options] COMMAND [ARGS]

Classifies products into HS (Harmonized System) tariff codes with Avalara's
HS code classification service.

Commands:
  classify DESCRIPTION  classify one product
  batch FILE            classify every product of a CSV or JSON file
  lookup CODE           show an HS code's hierarchy, chapter down to the code
  items COMMAND         the Items flow: classify a catalog for several countries,
                        list, sla, verify (see hscode items --help)
  token                 get an access token; show its type, scope and expiry
  connect               connect an Avalara account (browser, loopback redirect)
  connections           list the connections
  disconnect ID         revoke a connection and forget it
  help [COMMAND]        show this help, or a command's (also COMMAND --help)

]] .. GLOBAL_HELP .. [[

Credentials come from the environment (or the options above). With --env
local and neither an account nor a license key, the emulator's demo account
is used (account 2000000001, company 1001).

Access tokens are kept in $XDG_CACHE_HOME/avalara-hscode/tokens.db (else
~/.cache/avalara-hscode/tokens.db), readable by you only (mode 0600), so
repeated runs reuse a valid token.

Exit status: 0 success; 1 a request failed, or some batch items did;
2 usage or input error; 3 authentication or configuration error.
]]

local COMMANDS = {
  classify = { run = classify, options = { country = { "CC" }, ["item-code"] = { "CODE" },
    summary = { "TEXT" }, ["item-group"] = { "TEXT" }, wait = { "SECONDS" }, json = {} }, help = [[
Usage: hscode classify DESCRIPTION --country CC [options]

Classifies one product and waits for the result (HS code and description).

  --country CC         country of destination, two letters (required)
  --item-code CODE     the item's code (default hscode-cli)
  --summary TEXT       more details about the product
  --item-group TEXT    its category, such as "Clothing > Men > T-shirts"
                       (default "General merchandise")
  --wait SECONDS       how long to wait for the classification (default 60)
  --json               print the classification model as JSON

Example: hscode classify "men's cotton t-shirt" --country US
]] },
  batch = { run = batch, options = { country = { "CC" }, out = { "FILE" }, format = { "FORMAT" },
    concurrency = { "N" }, wait = { "SECONDS" } }, help = [[
Usage: hscode batch FILE [--country CC] [--out FILE] [options]

Classifies every product of FILE, a CSV file with a header row (or a .json
array of objects). Columns: itemCode and description (required), summary,
itemGroup (the category, such as "Clothing > Men") and country (optional);
names are matched ignoring case, spaces, '_' and '-' (item_code works). Rows
without a country use --country.

  --country CC         country of destination for rows without one
  -o, --out FILE       write the results there (CSV, or JSON when FILE ends
                       in .json), replacing it at once when done; every item
                       is in it, failed ones with their error
  --format FORMAT      table, csv or json (default: from --out, else a table
                       on stdout)
  --concurrency N      requests at once (default 16)
  --wait SECONDS       how long to wait for the classifications (default 120)

Progress is shown on stderr (a bar on a terminal), then a summary. Exits 1
when some items failed (the others' results are still written).

Example: hscode batch products.csv --country US --out results.csv
]] },
  lookup = { run = lookup, options = { country = { "CC" }, children = {}, json = {} }, help = [[
Usage: hscode lookup CODE --country CC [options]

Shows an HS code's hierarchy in a country's tariff: its chapter, heading
and so on down to the code itself. CODE may be written with dots (6109.10).

  --country CC         the country, two letters (required)
  --children           list the codes directly below it too
  --json               print {hierarchy, children} as JSON

Example: hscode lookup 610910 --country US
]] },
  connect = require "avalara.cli.connect",
  connections = require "avalara.cli.connections",
  disconnect = require "avalara.cli.disconnect",
  items = require "avalara.cli.items",
  token = { run = token, options = { ["show-secret"] = {}, json = {} }, help = [[
Usage: hscode token [--show-secret] [--json]

Gets an access token (or reuses the cached one) and shows its type, scope,
expiry and where it came from. The token itself is a secret: it is printed
only with --show-secret.

  --show-secret        print the access token too
  --json               print the same as JSON
]] },
}

local function help(sys, command)
  local c = command and COMMANDS[command]
  if command and not c then usage_error("no command '" .. command .. "'") end
  sys.stdout:write(c and c.help .. "\n" .. GLOBAL_HELP or MAIN_HELP)
end

-- ------------------------------------------------------------------ main

local function real_isatty(fd)
  local r = os.execute("test -t " .. fd)
  return r == true or r == 0
end

local function default_sys(sys)
  local s = {
    stdout = io.stdout, stderr = io.stderr, getenv = os.getenv, isatty = real_isatty, exit = os.exit,
    store = function() return avalara.store.file() end,
  }
  for k, v in pairs(sys or {}) do s[k] = v end
  return s
end

local function dispatch(sys, argv)
  local opts, positional, command = parse_args(argv, COMMANDS)
  if positional[1] == "help" then return help(sys, positional[2]) end
  if opts.help then return help(sys, command) end
  if not command then
    if positional[1] then usage_error("no command '" .. positional[1] .. "'") end
    usage_error("a command is needed")
  end
  table.remove(positional, 1)
  return COMMANDS[command].run(sys, opts, positional, shared)
end

--- Runs the command line `argv` and returns the exit status.
-- @tparam table argv the arguments (as `arg`)
-- @tparam[opt] table sys overrides of `{stdout, stderr, getenv, isatty, exit, store}`
-- @treturn int exit status
function M.run(argv, sys)
  sys = default_sys(sys)
  local ok, result = pcall(dispatch, sys, argv)
  if ok then return result or EXIT.ok end
  if getmetatable(result) ~= Failure then error(result, 0) end
  sys.stderr:write("hscode: ", result.message, "\n")
  if result.hint then sys.stderr:write(result.hint, "\n") end
  return result.code
end

--- Runs the command line and exits with its status (bin/hscode).
-- @tparam table argv
-- @tparam[opt] table sys as for `run`
function M.main(argv, sys)
  sys = default_sys(sys)
  local code = M.run(argv or {}, sys)
  sys.stdout:flush()
  return sys.exit(code, true)
end

return M
