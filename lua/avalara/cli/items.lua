--- `hscode items ...`: the AvaTax Items flow from a shell (`avalara.items`,
-- `avalara.catalog`).
--
--    hscode items classify products.csv --countries US,DE,JP --out codes.csv
--    hscode items list --countries US,DE,JP
--    hscode items sla
--    hscode items verify TS-1:US:610910 MUG-2:DE:691110
--
-- The command's helpers (failures, exit statuses, the client, options) are
-- `avalara.cli.common`, shared by every command; it never requires
-- `avalara.cli` (the dispatcher above it).
-- Why this size: about 400 lines, of which 50 are its help text; its four
-- subcommands share the client, the output and the Ctrl-C handling.
-- @module avalara.cli.items
local json = require "avalara.cli.json"
local sys_calls = require("avalara.core").sys
local private = require "avalara.private"
local clock = require "avalara.clock"
local csv = require "avalara.csv"
local signals = require "avalara.cli.signals"
local common = require "avalara.cli.common"
local log = require "avalara.cli.log"
local problems = require "avalara.cli.problems"
local catalog = require "avalara.items.catalog"
local intake = require "avalara.cli.intake"
local items_model = require "avalara.items.model"
local country_codes = require "avalara.country"

local M = {}

--- The command's name.
M.name = "items"
--- It catches SIGINT and SIGTERM itself, to keep what it did.
M.catches_signals = true
--- What it does, for `hscode --help`.
M.summary = "the Items flow: classify a catalog for several countries, list, SLA, verify codes"

--- The command's own options: name -> `{metavar}` (`{}`: a flag).
M.options = { countries = { "CC,CC" }, out = { "FILE" }, format = { "FORMAT" }, premium = {}, chunk = { "N" },
  wait = { "SECONDS" }, status = { "STATUS" }, json = {}, ["csv-formulas"] = {}, errors = { "FILE" },
  excel = {} }
for _, o in ipairs(intake.OPTIONS) do M.options[o[1]] = { o[2] } end

--- Its help text.
M.help = [[
Usage: hscode items classify FILE --countries CC,CC [options]
       hscode items list [--countries CC,CC] [--status STATUS] [--json]
       hscode items sla
       hscode items verify ITEMCODE:CC:HSCODE ... | FILE

The AvaTax Items flow: items live in the company's catalog, classified for
several destination countries at once; the codes become the items'
classifications.

classify FILE   upserts the items of FILE (CSV with a header row, a .json
                array or a .jsonl file, one object a line, as batch reads:
                itemCode and description required; summary, itemGroup,
                category, taxCode optional) and classifies each for every
                country of --countries; prints one row per item and country.
                Every item is checked first: all problems are listed at
                once, each with the file line where its record starts, and
                nothing is sent; the terminal shows the first 50.
                Run it again after a stop (Ctrl-C, a lost connection, the
                sandbox quota): nothing is created or initiated twice.
list            every item of the catalog with its code per country
sla             the service's SLA for HS classification, in hours
verify          verifies HS codes for items (by item code) and countries, all
                or nothing: either every code is kept, or none and the
                failing rows are listed. FILE: CSV columns itemCode, country,
                hsCode.

  --countries CC,CC    destination countries, two letters each (classify: required)
]] .. intake.HELP .. [[
  -o, --out FILE       write the rows there (CSV, or JSON when FILE ends in .json)
  --format FORMAT      table, csv or json (default: from --out, else a table)
  --premium            ask for premium classifications
  --chunk N            items per initiate request (default 100, at most 500)
  --wait SECONDS       how long to wait for the classifications (default 600)
  --status STATUS      list: only items with a status of that value (Pending, ...)
  --json               sla, list and verify: print JSON
  --errors FILE        classify: write every problem of FILE there (CSV: line,
                       column, problem)
  --excel              classify, list: CSV for Excel and Google Sheets: a UTF-8
                       BOM first, and itemCode, hsCode and systemCode written
                       as ="0101" so that their leading zeros stay (verify
                       reads such a cell as 0101)
  --csv-formulas       write CSV cells that start with =, +, -, @, tab or CR as
                       they are (by default they get a leading ', so that a
                       spreadsheet does not run them as formulas)

Exit status: 0 every row classified or decided; 1 some rows failed, were not
attempted (a stop, the quota) or are still pending.

Example: hscode items classify products.csv --countries US,DE,JP --out codes.csv
]]

local COLUMNS = { "itemCode", "itemId", "country", "status", "hsCode", "systemCode", "classificationId", "details",
  "errorCode", "errorMessage" }

local function countries_option(opts, required)
  return common.countries_option(opts, "items", required)
end

local function flat(row)
  local e = row.error or {}
  local out = {}
  for k, v in pairs(row) do if k ~= "error" then out[k] = v end end
  out.errorCode, out.errorMessage = e.code, e.message
  return out
end

-- The columns `--excel` writes as spreadsheet text (leading zeros kept).
local CODE_COLUMNS = { itemCode = true, hsCode = true, systemCode = true }

local function format_rows(rows, format, formulas, excel)
  if format == "json" then
    local lines = {}
    for i, r in ipairs(rows) do lines[i] = "  " .. json.encode(flat(r), COLUMNS) end
    return "[\n" .. table.concat(lines, ",\n") .. "\n]\n"
  elseif format == "csv" then
    local records, text = {}, {}
    for i, r in ipairs(rows) do
      local f, record = flat(r), {}
      for c, name in ipairs(COLUMNS) do record[c] = f[name] == nil and "" or tostring(f[name]) end
      records[i] = record
    end
    for c, name in ipairs(COLUMNS) do text[c] = excel and CODE_COLUMNS[name] or nil end
    return (excel and csv.BOM or "") .. csv.line(COLUMNS, { formulas = formulas })
      .. csv.format(records, { formulas = formulas, text = text })
  end
  local lines = { string.format("%-24s %-3s %-20s %-12s %s", "ITEM", "CC", "STATUS", "HS CODE", "SYSTEM") }
  for _, r in ipairs(rows) do
    lines[#lines + 1] = (string.format("%-24s %-3s %-20s %-12s %s", r.itemCode, r.country, r.status,
      r.hsCode or "-", r.systemCode or (r.error and r.error.message) or "")):gsub("%s+$", "")
  end
  return table.concat(lines, "\n") .. "\n"
end

-- Writes `text` to `path` through a temporary file beside it (no half-written
-- output): a random hidden name, created exclusively, never through a link
-- (`avalara.private`), with the mode of the file it replaces.
local function write_file(path, text)
  local old = sys_calls.stat(path)
  local f, tmp = private.temp_beside(path, ".hscode-tmp", old and old.type == "file" and old.mode or nil)
  local ok, err = f ~= nil, tmp
  if f then
    ok, err = f:write(text)
    if ok then ok, err = sys_calls.fsync(f) end
    f:close()
    if ok then ok, err = os.rename(tmp, path) end
    if not ok then os.remove(tmp) end
  end
  if not ok then
    local message = type(err) == "table" and err.message or tostring(err) -- avalara.private's, or io's
    common.fail(common.EXIT.failed, "cannot write " .. path .. ": " .. message:gsub("^cannot create ", ""))
  end
end

local function output(sys, opts, rows)
  local format = opts.format or (opts.excel and "csv")
    or (opts.out and (opts.out:lower():match("%.json$") and "json" or "csv")) or "table"
  if format ~= "table" and format ~= "csv" and format ~= "json" then
    common.usage_error("--format must be table, csv or json (got '" .. format .. "')", "items")
  end
  if opts.excel and format ~= "csv" then
    common.usage_error("--excel writes CSV; it cannot go with --format " .. format, "items")
  end
  local text = format_rows(rows, format, opts.csv_formulas, opts.excel)
  if opts.out then write_file(opts.out, text) else sys.stdout:write(text) end
end

-- Every item checked (its fields; one item per item code) before any request: all the problems in one failure.
local function check_items(name, list, errors)
  local found, at = {}, {}
  for _, it in ipairs(list) do
    local line = it.where:match(" line (%d+)$") or it.where:match(" item (%d+)$")
    local body, why = items_model.build(it)
    local column = why and why:match("^'([^'%[%.]+)")
    if body and at[body.itemCode] then
      why = "item code " .. body.itemCode .. " is also on " .. at[body.itemCode] .. " (one item per item code)"
      column = "itemCode"
    elseif body then
      at[body.itemCode] = it.where:match(" (%a+ %d+)$")
    end
    if why then found[#found + 1] = { where = it.where, line = line, column = column, problem = why } end
  end
  local n = #found
  if n > 0 then
    common.fail(common.EXIT.usage, problems.message(string.format("%d item%s of %s %s not valid (nothing was sent)",
      n, n == 1 and "" or "s", name, n == 1 and "is" or "are"), found, errors))
  end
end

local function classify(sys, opts, args)
  if #args ~= 1 then common.usage_error("items classify needs one catalog file (CSV or JSON)", "items") end
  local countries = countries_option(opts, true)
  local chunk = common.positive_number(opts, "chunk", "items", true)
  if chunk and chunk > 500 then common.usage_error("--chunk must be at most 500", "items") end
  local wait = common.positive_number(opts, "wait", "items") or 600
  local errors = problems.target(opts, "items")
  local list, err = catalog.read(args[1], intake.settings(opts, "items", catalog.COLUMNS))
  if not list then
    common.fail(common.EXIT.usage, err.code == "map" and (err.message:gsub(": no column", ": --map: no column", 1))
      or err.message)
  end
  local cut = err.truncated
  check_items(args[1], list, errors)
  if opts.format and opts.format ~= "table" and opts.format ~= "csv" and opts.format ~= "json" then
    common.usage_error("--format must be table, csv or json (got '" .. opts.format .. "')", "items")
  end
  if opts.excel and (opts.format or "csv") ~= "csv" then
    common.usage_error("--excel writes CSV; it cannot go with --format " .. opts.format, "items")
  end
  local client = common.make_client(sys, opts, true)
  local started = clock.time()
  -- Ctrl-C (or SIGTERM) stops before the next request and reports what is
  -- known; a second one stops at once (as Lua's own interrupt would).
  local sig = signals.catch(function(_, count)
    if count == 1 then
      sys.stderr:write("\nhscode: stopping: no new request; reporting what is known (Ctrl-C again to stop at once)\n")
    end
  end)
  local function should_stop()
    local asked = sig.check()
    if asked == "abort" then error("interrupted!", 0) end
    return asked ~= nil
  end
  local ok, rows, summary = pcall(client.classify_catalog, client, list, countries, { chunk = chunk, timeout = wait,
    premium = opts.premium and true or nil, should_stop = should_stop,
    on_progress = function(p)
      -- ended: a wait cut short (Ctrl-C, --wait), with the items decided by then
      if p.total > 0 and (p.done == 0 or p.done == p.total or p.ended) then
        log.emit(sys, "info", "progress", nil, { { "phase", p.phase }, { "done", p.done }, { "total", p.total },
          { "ended", p.ended and true or nil } }, string.format("hscode: %s %d/%d%s\n", p.phase, p.done, p.total,
          p.ended and " decided, the others still pending" or ""))
      end
    end })
  local signal = sig.signal
  sig.close()
  if not ok then error(rows, 0) end
  if not rows then common.request_failed("items classify failed", summary, client) end
  output(sys, opts, rows)
  local elapsed = clock.time() - started
  local message = string.format("%d items x %d countries: %d classified, %d could not be classified, "
    .. "%d pending, %d failed, %d not attempted (%d initiated, %d kept from before; %d s)%s%s", summary.items,
    summary.countries, summary.classified, summary.cannot, summary.pending, summary.failed, summary.not_attempted,
    summary.initiated, summary.kept, elapsed, opts.out and "; rows in " .. opts.out or "",
    summary.stopped == "quota" and "; stopped: " .. tostring(summary.stop_error) or "")
  log.emit(sys, "info", "summary", message, { { "items", summary.items }, { "countries", summary.countries },
    { "classified", summary.classified }, { "cannot_be_classified", summary.cannot }, { "pending", summary.pending },
    { "failed", summary.failed }, { "not_attempted", summary.not_attempted }, { "initiated", summary.initiated },
    { "kept", summary.kept }, { "elapsed", elapsed }, { "out", opts.out },
    { "stopped", summary.stopped and tostring(summary.stop_error) or nil } })
  local note = intake.cut_note(cut, items_model.LIMITS.description)
  if note then log.emit(sys, "info", "truncated", note, { { "truncated", cut } }) end
  if signal then
    common.fail(signal == "sigterm" and common.EXIT.sigterm or common.EXIT.sigint, "interrupted: what was done is "
      .. "kept by the service; run the same command again to go on (nothing is created or initiated twice)")
  end
  if summary.failed + summary.pending + summary.not_attempted > 0 then return common.EXIT.failed end
end

local function list_items(sys, opts, args)
  if #args > 0 then common.usage_error("items list takes no arguments", "items") end
  local countries = countries_option(opts, false)
  local client = common.make_client(sys, opts, true)
  local rows = {}
  local next_item = client:each_item { include = "HsCodeClassificationStatus,Classifications",
    hs_code_classification_status = opts.status }
  while true do
    -- nil, err on failure (then the end): a generic `for` would stop without the error
    local item, err = next_item()
    if item == nil then
      if err then common.request_failed("items list failed", err, client) end
      break
    end
    local by = {}
    for _, s in ipairs(item.hsCodeClassificationStatus or {}) do by[s.country] = { status = s.status } end
    for _, k in ipairs(item.classifications or {}) do
      by[k.country] = by[k.country] or {}
      by[k.country].code = k
    end
    local wanted = countries
    if not wanted then
      wanted = {}
      for cc in pairs(by) do wanted[#wanted + 1] = cc end
      table.sort(wanted)
    end
    for _, cc in ipairs(wanted) do
      local b = by[cc] or {}
      rows[#rows + 1] = { itemCode = item.itemCode, itemId = item.id, country = cc, status = b.status or "-",
        hsCode = b.code and b.code.productCode, systemCode = b.code and b.code.systemCode,
        classificationId = b.code and b.code.id }
    end
  end
  output(sys, { format = opts.json and "json" or opts.format, out = opts.out, csv_formulas = opts.csv_formulas,
    excel = opts.excel }, rows)
end

local function sla(sys, opts, args)
  if #args > 0 then common.usage_error("items sla takes no arguments", "items") end
  local client = common.make_client(sys, opts, true)
  local model, err = client:hscode_classification_sla()
  if not model then common.request_failed("items sla failed", err, client) end
  if opts.json then return common.write_json(sys, model) end
  sys.stdout:write(string.format("HS code classification SLA: %s hours\n", tostring(model.slaInHours)))
end

-- The rows to verify: ITEMCODE:CC:HSCODE arguments, or a CSV file.
local function verify_rows(args)
  local rows = {}
  if #args == 1 and not args[1]:find(":", 1, true) then
    local f, err = io.open(args[1], "rb")
    if not f then common.fail(common.EXIT.usage, "cannot read " .. tostring(err)) end
    local records, perr = csv.parse(f:read("*a"))
    f:close()
    if not records then common.fail(common.EXIT.usage, args[1] .. ": " .. perr.message) end
    local col = {}
    for c, title in ipairs(records[1] or {}) do col[title:lower():gsub("[%s_%-]", "")] = c end
    if not (col.itemcode and col.country and col.hscode) then
      common.fail(common.EXIT.usage, args[1] .. ": the header needs itemCode, country and hsCode")
    end
    for r = 2, #records do
      local rec = records[r]
      rows[#rows + 1] = { itemCode = rec[col.itemcode], country = rec[col.country], hsCode = rec[col.hscode],
        where = args[1] .. " line " .. rec.line }
    end
  else
    for _, a in ipairs(args) do
      local code, cc, hs = a:match("^(.+):(%a%a):([%d%.]+)$")
      if not code then
        common.usage_error("bad row '" .. a .. "' (ITEMCODE:CC:HSCODE, such as TS-1:US:610910)", "items")
      end
      rows[#rows + 1] = { itemCode = code, country = cc, hsCode = hs, where = a }
    end
  end
  for _, r in ipairs(rows) do
    r.hsCode = (r.hsCode or ""):gsub("%.", "")
    local cc, why = country_codes.check(r.country or "")
    if not cc then common.fail(common.EXIT.usage, r.where .. ": " .. why) end
    r.country = cc
    if not r.hsCode:match("^%d+$") then common.fail(common.EXIT.usage, r.where .. ": bad HS code") end
  end
  if #rows == 0 then common.usage_error("items verify needs rows (ITEMCODE:CC:HSCODE ...) or a CSV file", "items") end
  return rows
end

local function verify(sys, opts, args)
  local rows = verify_rows(args)
  local client = common.make_client(sys, opts, true)
  local ids = {}
  for _, r in ipairs(rows) do
    if not ids[r.itemCode] then
      local list, err = client:items { filter = "itemCode eq '" .. r.itemCode:gsub("'", "''") .. "'" }
      if not list then common.request_failed("items verify failed", err, client) end
      for _, it in ipairs(list) do
        if it.itemCode == r.itemCode then ids[r.itemCode] = it.id end
      end
      if not ids[r.itemCode] then common.fail(common.EXIT.failed, r.where .. ": no item '" .. r.itemCode .. "'") end
    end
  end
  local body = {}
  for i, r in ipairs(rows) do body[i] = { itemId = ids[r.itemCode], country = r.country, hsCode = r.hsCode } end
  local out, err = client:verify_hscodes(body)
  if not out then common.request_failed("items verify failed", err, client) end
  if opts.json then common.write_json(sys, out)
  elseif #out.failed == 0 then
    sys.stdout:write(string.format("%d %s verified and kept\n", #rows, #rows == 1 and "code" or "codes"))
  else
    sys.stdout:write("nothing kept: every row must pass\n")
    for _, f in ipairs(out.failed) do
      local r = rows[(f.rowIndex or -1) + 1]
      sys.stdout:write(string.format("%s: %s %s\n", r and r.where or "?", tostring(f.errorCode),
        table.concat(f.errors or {}, "; ")))
    end
  end
  if #out.failed > 0 then return common.EXIT.failed end
end

local SUBCOMMANDS = { classify = classify, list = list_items, sla = sla, verify = verify }

--- Runs it: `args[1]` is the subcommand.
-- @param sys the CLI's system table
-- @tparam table opts the parsed options
-- @tparam table args the positional arguments
-- @return the exit status (nil: success)
function M.run(sys, opts, args)
  local sub = SUBCOMMANDS[args[1] or ""]
  if not sub then
    common.usage_error(args[1] and "no items command '" .. args[1] .. "' (classify, list, sla, verify)"
      or "items needs a command: classify, list, sla or verify", "items")
  end
  local rest = {}
  for i = 2, #args do rest[#rest + 1] = args[i] end
  local ok, status = pcall(sub, sys, opts, rest)
  if ok then return status end
  if type(status) == "string" and status:match("interrupted!$") then
    common.fail(common.EXIT.sigint or 130, "interrupted: what was done is kept by the service; run the same "
      .. "command again to go on (nothing is created or initiated twice)")
  end
  error(status, 0)
end

return M
