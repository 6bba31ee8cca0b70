--- `hscode batch FILE --out OUT`: every product of a file, through the
-- journaled pipeline of `avalara.batch`, results streamed to OUT in input
-- order; Ctrl-C, `kill` and a quota exhaustion lose nothing, and the same
-- command again resumes.
--
-- Why this size: a little over 450 lines, of which 90 are its help text: the
-- command's steps (settings, journal, checking pass, run, report, dry run)
-- share one table of state and the exit paths that keep or remove the
-- journal, which are easiest to check side by side.
-- @module avalara.cli.batch
local core = require "avalara.core"
local clock = require "avalara.clock"
local batch = require "avalara.batch"
local journal = require "avalara.batch.journal"
local descriptions = require "avalara.hs.descriptions"
local common = require "avalara.cli.common"
local input = require "avalara.cli.input"
local intake = require "avalara.cli.intake"
local output = require "avalara.cli.output"
local progress = require "avalara.cli.progress"
local log = require "avalara.cli.log"
local problems = require "avalara.cli.problems"
local signals = require "avalara.cli.signals"

local EXIT, fail, usage_error = common.EXIT, common.fail, common.usage_error

local M = {}

--- The command's name.
M.name = "batch"
--- It catches SIGINT and SIGTERM itself, to keep what it did.
M.catches_signals = true
--- What it does, for `hscode --help`.
M.summary = "classify every product of a CSV, JSON or JSON Lines file"

--- The command's own options.
M.options = { { "country", "CC,CC" }, { "out", "FILE" }, { "format", "FORMAT" }, { "journal", "PATH" }, { "restart" },
  { "rate", "N" }, { "skip-invalid" }, { "concurrency", "N" }, { "wait", "SECONDS" }, { "csv-formulas" },
  { "max-record-size", "BYTES" }, { "errors", "FILE" }, { "excel" },
  { "keep-journal" }, { "dry-run" } }
for _, o in ipairs(intake.OPTIONS) do M.options[#M.options + 1] = o end

--- Its help text.
M.help = [[
Usage: hscode batch FILE --out OUT [options]

Classifies every product of FILE: a CSV file with a header row, a .json
array of objects or a .jsonl file (one object a line); - reads stdin.
Columns: itemCode and description (required), summary, itemGroup (the
category, such as "Clothing > Men") and country (optional); names are
matched ignoring case, spaces, '_' and '-' (item_code works), or named
with --map. Rows without a country use --country: one row per country of
it. HTML in descriptions and summaries is made plain text. Every row is
checked first, as the service would (lengths, country codes, UTF-8): all
problems are listed at once, each with the file line where its record
starts (a JSON array: its item number), and nothing is sent; the terminal
shows the first 50.

  --country CC,CC      countries of destination for rows without one: such a
                       row is classified for each (one output row per item
                       and country)
]] .. intake.HELP .. [[
  -o, --out OUT        write the results there, in input order, as they come:
                       the input's columns plus status, hsCode,
                       hsCodeDescription, resolution, id and the error columns.
                       A regular file is replaced when done (a symlink's target
                       is); a FIFO, a device or - (stdout) is written directly
  --format FORMAT      csv, json, jsonl or table (default: from the name of
                       OUT, .json or .jsonl, else csv; a table without --out)
  --journal PATH       where the progress is kept (default: OUT.journal)
  --restart            discard the journal and start again
  --keep-journal       keep the journal after a run that went well (by default
                       it is removed): the next run of an edited catalog
                       classifies only the rows that changed
  --dry-run            check the input and say what a run would do (create,
                       take from the journal, look up, skip), on stdout;
                       send nothing, write no output, leave the journal as is
  --rate N             at most N requests per second (evenly spaced)
  --skip-invalid       go on without the rows that are not valid (written
                       with status INVALID); exit 0 when every row sent
                       succeeded
  --errors FILE        write every problem of the input there (CSV: line,
                       column, problem)
  --concurrency N      requests at once (default 16); halved while the
                       service says too many (429), growing back slowly
  --wait SECONDS       how long to wait for each classification (default 120)
  --excel              CSV for Excel and Google Sheets: a UTF-8 BOM first, and
                       itemCode and hsCode written as ="0101" so that their
                       leading zeros stay (hscode reads such a cell as 0101)
  --csv-formulas       write CSV cells that start with =, +, -, @, tab or CR
                       as they are. By default they get a leading ' so that a
                       spreadsheet shows them as text instead of running them
                       as formulas (-5 is written '-5); a CSV input cell
                       written so is read without that quote
  --max-record-size BYTES  refuse a CSV record or JSON Lines line longer than
                       this (default 1M; K, M and G suffixes: KiB, MiB, GiB)

Resuming: progress is journaled as it goes. Run the same command again after
Ctrl-C, kill or a power cut: finished rows are taken from the journal, rows
whose create was sent are looked up by id first, so no item is created
twice. A journal of another company, service or default --country is
refused. After a run with nothing left to do (no row failed, pending or not
attempted) the journal is removed, unless --keep-journal.

Nightly catalogs: with a journal kept (--keep-journal), the next run takes
the rows whose item code, country and details are unchanged from it, classifies
again the rows whose description, summary or itemGroup changed (and only
them) and the new rows, and drops the rows no longer in FILE; the summary
says how many of each.

Interrupting: Ctrl-C (or SIGTERM) stops sending, lets the requests in flight
finish, writes what is done and says how to resume (exit 130, or 143); a
second Ctrl-C stops at once.

Quota: when the service says the classification quota is used up, the batch
stops creating at once; the rest is NOT_ATTEMPTED (and kept for a rerun).

Duplicates: a row with the item code and country of an earlier row is not
sent again; it gets the same result.

Example: hscode batch products.csv --country US --out results.csv
]]

local FORMATS = { csv = true, json = true, jsonl = true, table = true }

local function shell_word(s)
  if s:match("^[%w%-%._/=:,@+]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The command line that resumes this run; a secret given on it is not repeated.
local SECRET_FLAGS = { ["--license-key"] = "KEY", ["--client-secret"] = "SECRET" }
local function resume_command(sys, jpath, temporary)
  local words, hide = { "hscode" }, nil
  for _, a in ipairs(sys.argv or {}) do
    local flag = a:match("^(%-%-[%w-]+)=")
    if hide then
      words[#words + 1], hide = hide, nil
    elseif flag and SECRET_FLAGS[flag] then
      words[#words + 1] = flag .. "=" .. SECRET_FLAGS[flag]
    else
      words[#words + 1] = shell_word(a)
      hide = SECRET_FLAGS[a]
    end
  end
  if temporary then words[#words + 1] = "--journal " .. shell_word(jpath) end
  return table.concat(words, " ")
end

local function remove_journal(path, temporary)
  journal.remove(path)
  if type(temporary) == "string" then os.remove(temporary) end -- its private folder, now empty
end

-- A row's place for messages: "line 166" (a JSON array: "item 165").
local function place(src, line)
  return (src.kind == "json" and "item " or "line ") .. tostring(line)
end

-- The problems of the plan, for `avalara.cli.problems`: `{where, line, column, problem}`, in row order.
local function problem_list(src, plan)
  local list = {}
  for i, p in ipairs(plan.problems) do
    local item = p.item or {}
    local field = plan.conflicts[p.row] and "itemCode" or item.field
    local column = field and src.kind == "csv" and src.index[field] and src.columns[src.index[field]] or field
    list[i] = { where = item.where or (src.name .. " row " .. p.row), line = item.line or p.row, column = column,
      problem = p.message }
  end
  return list
end

-- ---------------------------------------------------------------- steps
-- The command's steps share one table `r` (`sys`, `opts`, the settings, the
-- target, the client, the input, the journal, the signals, the writer).

-- The command's settings from its options (a usage error names the bad one).
local function settings(r)
  local opts = r.opts
  r.country = common.countries_option(opts, "batch", false, "country")
  r.intake = intake.settings(opts, "batch", input.FIELDS)
  r.concurrency = common.positive_number(opts, "concurrency", "batch", true)
  r.wait = common.positive_number(opts, "wait", "batch") or 120
  r.rate = common.positive_number(opts, "rate", "batch")
  r.max_record = common.size_option(opts, "max_record_size", "batch")
  r.errors = problems.target(opts, "batch")
  r.format = opts.format or (opts.excel and "csv") or (opts.out and opts.out ~= "-" and output.format_of(opts.out))
    or (opts.out and "csv") or "table"
  if opts.excel and r.format ~= "csv" then
    usage_error("--excel writes CSV; it cannot go with --format " .. r.format, "batch")
  end
  if not FORMATS[r.format] then
    usage_error("--format must be csv, json, jsonl or table (got '" .. r.format .. "')", "batch")
  end
end

-- The journal: --journal, else OUT.journal, else one in a private temporary folder.
local function open_journal(r)
  local jpath, temporary = r.opts.journal, false
  if not jpath then
    if r.target.kind == "file" then jpath = r.target.path .. ".journal"
    else
      -- no place of its own: a private folder (0700, random name) in $TMPDIR
      local dir, derr = require("avalara.private").temp_dir("hscode-batch")
      if not dir then
        r.src:close()
        fail(EXIT.failed, derr)
      end
      jpath, temporary = dir .. "/journal", dir
    end
  end
  r.jpath, r.temporary = jpath, temporary
  local found = r.opts.dry_run and not r.opts.restart and io.open(jpath, "rb")
  if found then found:close() end
  if r.opts.dry_run and not found then
    -- a dry run makes no journal and discards none: a new one would be empty
    if temporary then remove_journal(jpath, temporary) end
    r.state, r.temporary = journal.memory(), false
    return
  end
  local state, jerr = journal.open(jpath, { company = r.client.company_id, api_base = r.client.api_base,
    country = r.country and table.concat(r.country, ",") or "" }, { restart = r.opts.restart })
  if not state then
    r.src:close()
    if temporary then remove_journal(jpath, temporary) end
    fail(EXIT.usage, jerr.message, "Use --restart to discard it (everything is classified again), or --journal PATH.")
  end
  r.state = state
end

-- The exit status of the signal that stopped it.
local function interrupted(r)
  return r.sig.signal == "sigterm" and EXIT.sigterm or EXIT.sigint
end

-- The source of the checking pass: a signal is heard there too (it takes
-- seconds on a large file); the line of each row is kept in `lines` (the
-- conflicts name the earlier row by its line).
local function heeding(r, source, lines)
  return function()
    local rows, n, last = source(), 0, nil
    r.truncated = 0
    return function()
      n = n + 1
      if n % 1000 == 0 and r.sig.check() then fail(interrupted(r), "interrupted before any request") end
      local row, item, problem = rows()
      if row then
        lines[row] = item.line
        -- a record cut once, however many countries it goes to
        if item.truncated and item.line ~= last then r.truncated = r.truncated + 1 end
        last = item.line
      end
      return row, item, problem
    end
  end
end

-- The checking pass: every row recorded in the journal and checked, before any request.
local function check(r, service, bad)
  local lines = {}
  local plan = service:plan(r.state, heeding(r, r.src:source(r.country, bad), lines),
    { where_of = function(row) return place(r.src, lines[row] or row) end, count = r.opts.dry_run and 50 or nil })
  plan.lines = lines
  if plan.rows == 0 then r.discard = true; fail(EXIT.usage, r.src.name .. ": no items") end
  local n = #plan.problems
  if n > 0 and not r.opts.skip_invalid then
    r.state:rollback()
    r.discard = true
    local head = string.format("%d row%s of %s %s not valid (nothing was sent)", n, n == 1 and "" or "s",
      r.src.name, n == 1 and "is" or "are")
    fail(EXIT.usage, problems.message(head, problem_list(r.src, plan), r.errors),
      "Fix them, or use --skip-invalid to go on without them.")
  end
  if n > 0 and r.errors then problems.write(r.errors, problem_list(r.src, plan)) end
  if r.opts.dry_run then
    r.state:rollback() -- the journal as it was
    r.checked = true
    return plan
  end
  r.state:commit()
  r.checked = true
  return plan
end

-- A dry run's report, on stdout: what a run would do with each row.
local function dry_report(r, plan)
  local out, n = r.sys.stdout, #plan.problems
  local function line(label, count, note)
    out:write(string.format("  %-26s %7d%s\n", label, count, note and count > 0 and "  (" .. note .. ")" or ""))
  end
  out:write(string.format("hscode: dry run of %s (nothing sent, nothing written): %d rows\n", r.src.name, plan.rows))
  -- new and changed rows are all created; so are unchanged ones the last run did not send
  local why = {}
  for _, part in ipairs { { plan.new, "new" }, { plan.changed, "changed" },
    { plan.create - plan.new - plan.changed, "left by the last run" } } do
    if part[1] > 0 then why[#why + 1] = part[1] .. " " .. part[2] end
  end
  line("to create", plan.create, plan.journal and table.concat(why, ", ") or nil)
  line("from the journal", plan.resumed)
  line("to look up by id", plan.lookup, "a create sent before, or a result worth another try")
  line("duplicates (skipped)", plan.duplicates, "the result of an earlier row")
  line("invalid (skipped)", n)
  if plan.journal then
    out:write(string.format("  against the journal %s: %d unchanged, %d changed, %d new, %d removed\n", r.jpath,
      plan.unchanged, plan.changed, plan.new, plan.removed))
  end
  for _, c in ipairs(plan.listed) do
    out:write(string.format("  create %s: %s for %s%s\n", place(r.src, plan.lines[c.row] or c.row), c.code,
      c.country, plan.journal and " (" .. c.verdict .. ")" or ""))
  end
  if plan.create > #plan.listed then
    out:write(string.format("  ... and %d more to create\n", plan.create - #plan.listed))
  end
  return EXIT.ok
end

-- The checking pass, then the batch itself, its rows written as they come.
local function classify(r)
  local sys, client, src = r.sys, r.client, r.src
  local service = batch.new(client)
  -- an input error in the checking pass leaves no journal that this run made
  local function bad(message)
    if not r.checked then r.discard = true end
    fail(EXIT.usage, message)
  end
  local plan = check(r, service, bad)
  if r.opts.dry_run then return { dry = plan } end
  if r.sig.check() then fail(interrupted(r), "interrupted before any request") end
  -- Credentials are tried before anything is written. The token request is
  -- one blocking call that no `check` interrupts: during it a signal ends
  -- hscode at once, as a short command's does (nothing was sent yet).
  local tok, toerr
  if sys.exit_on_signal then
    r.sig.close()
    local json_log = log.is_json(sys)
    for _, sig in ipairs { { "sigint", "interrupted" }, { "sigterm", "terminated" } } do
      local message = sig[2] .. " before any classification"
      sys.exit_on_signal(sig[1], json_log and sys.stderr:render("error", sig[1], message,
        { { "exit", EXIT[sig[1]] } }) or "\nhscode: " .. message .. "\n")
    end
    tok, toerr = client:token()
    r.sig = signals.catch(r.on_signal)
  else
    tok, toerr = client:token()
  end
  if not tok then
    r.discard = true
    common.request_failed("cannot get an access token", toerr, client)
  end

  local describe = descriptions.new(client)
  local werr
  r.writer, werr = output.open(r.target, r.format, src, { stdout = sys.stdout,
    -- the pipeline looks the descriptions up; writing a row never waits for one
    describe = function(cc, code) return describe:cached(cc, code) end,
    width = tonumber(common.getenv(sys, "COLUMNS")), formulas = r.opts.csv_formulas,
    excel = r.opts.excel })
  if not r.writer then fail(EXIT.usage, werr) end

  local started, failed, counts = clock.now(), 0, { CLASSIFIED = 0, CANNOT_BE_CLASSIFIED = 0 }
  local update = progress.new(sys, plan.rows, plan.done)
  local summary = service:run(src:source(r.country, bad), function(_, item, result)
    local status = output.status_of(result)
    counts[status] = (counts[status] or 0) + 1
    r.writer.row(item, result)
  end, { state = r.state, conflicts = plan.conflicts, concurrency = r.concurrency, timeout = r.wait,
    rate = r.rate, total = plan.rows, describe = describe, should_stop = r.sig.check,
    on_progress = function(done, _, _, result)
      if output.status_of(result) == "FAILED" then failed = failed + 1 end
      update(done, failed)
    end })
  if summary.interrupted then update(summary.written, failed, true) end
  local written, fwerr = r.writer.finish()
  r.writer = nil
  if not written then fail(EXIT.failed, fwerr) end
  return { summary = summary, counts = counts, elapsed = clock.now() - started, plan = plan }
end

-- What it did, on stderr, and its exit status.
local function report(r, result)
  local sys, target, jpath, temporary = r.sys, r.target, r.jpath, r.temporary
  local s, counts = result.summary, result.counts
  local out_name = target.kind == "stdout" and "stdout" or target.path
  local parts = { string.format("%d classified, %d could not be classified, %d failed", counts.CLASSIFIED,
    counts.CANNOT_BE_CLASSIFIED, counts.FAILED or 0) }
  if s.not_attempted > 0 then parts[#parts + 1] = s.not_attempted .. " not attempted" end
  if s.invalid > 0 then parts[#parts + 1] = s.invalid .. " invalid (skipped)" end
  if s.duplicates > 0 then parts[#parts + 1] = s.duplicates .. " duplicates" end
  if s.resumed > 0 then parts[#parts + 1] = s.resumed .. " from the journal" end
  parts[#parts + 1] = intake.cut_note(r.truncated, input.DESCRIPTION_LIMIT)
  if counts.PENDING then parts[#parts + 1] = counts.PENDING .. " still pending" end
  local text = string.format("hscode: %d items: %s (%.1f s)%s\n", s.total, table.concat(parts, ", "),
    result.elapsed, target.kind ~= "stdout" and "; results in " .. out_name or "")
  log.emit(sys, "info", "summary", text:match("^hscode: (.-)\n$"), { { "total", s.total },
    { "classified", counts.CLASSIFIED }, { "cannot_be_classified", counts.CANNOT_BE_CLASSIFIED },
    { "failed", counts.FAILED or 0 }, { "pending", counts.PENDING or 0 }, { "not_attempted", s.not_attempted },
    { "invalid", s.invalid }, { "duplicates", s.duplicates }, { "resumed", s.resumed },
    { "elapsed", math.floor(result.elapsed * 10 + 0.5) / 10 }, { "out", out_name } }, text)
  local p = result.plan
  if p.journal then
    log.emit(sys, "info", "journal", string.format("against the journal: %d unchanged, %d changed, %d new, %d removed",
      p.unchanged, p.changed, p.new, p.removed), { { "unchanged", p.unchanged }, { "changed", p.changed },
      { "new", p.new }, { "removed", p.removed } })
  end

  local unfinished = s.interrupted or s.stopped or (counts.FAILED or 0) > 0 or (counts.PENDING or 0) > 0
  if s.interrupted then
    local resume = resume_command(sys, jpath, temporary)
    log.emit(sys, "warning", "interrupted", string.format("interrupted: %d of %d rows written to %s; the journal %s "
      .. "keeps the rest. To resume, run the same command again: %s", s.written, s.total, out_name, jpath, resume),
      { { "written", s.written }, { "total", s.total }, { "journal", jpath }, { "resume", resume } },
      string.format("hscode: interrupted: %d of %d rows written to %s; the journal %s keeps "
      .. "the rest. To resume, run the same command again:\n  %s\n", s.written, s.total, out_name, jpath, resume))
    return interrupted(r)
  end
  if s.stopped == "quota" then
    local resume = resume_command(sys, jpath, temporary)
    local message = string.format("stopped: the classification quota is used up (%s); %d items were "
      .. "not attempted. They are kept in the journal %s: run the same command again when the quota allows:",
      tostring(s.reason), s.not_attempted, jpath)
    log.emit(sys, "warning", "quota", message .. " " .. resume, { { "not_attempted", s.not_attempted },
      { "journal", jpath }, { "resume", resume } }, "hscode: " .. message .. "\n  " .. resume .. "\n")
    return EXIT.failed
  end
  if s.stopped == "auth" then
    fail(common.exit_code_for(s.reason), "stopped: cannot get an access token: " .. tostring(s.reason),
      common.hint_for(r.client, s.reason))
  end
  if not unfinished and (temporary or not r.opts.keep_journal) then
    remove_journal(jpath, temporary) -- nothing left to do: it would only pile up
  elseif unfinished then
    sys.stderr:write(string.format("hscode: the journal %s keeps what is done; to try the failed or pending rows "
      .. "again (the others come from it), run the same command again:\n  %s\n", jpath,
      resume_command(sys, jpath, temporary)))
  end
  -- rows skipped as invalid (--skip-invalid) were asked to be skipped: 0 when every row sent succeeded
  if s.failed > 0 then return EXIT.failed end
  return EXIT.ok
end

--- Runs it.
function M.run(sys, opts, args)
  if #args ~= 1 then
    usage_error("batch needs exactly one input file (CSV, JSON or JSON Lines; - for stdin)", "batch")
  end
  local r = { sys = sys, opts = opts }
  settings(r)
  -- Where the results go is settled first: a bad --out costs nothing.
  local terr
  r.target, terr = output.target(opts.out or "-")
  if not r.target then fail(EXIT.usage, terr) end
  r.client = common.make_client(sys, opts, true)
  local ierr
  r.src, ierr = input.open(args[1], sys.stdin)
  if not r.src then fail(EXIT.usage, ierr) end
  r.src.max_record = r.max_record
  if opts.keep_journal and not opts.journal and r.target.kind ~= "file" then
    r.src:close()
    usage_error("--keep-journal needs a journal of its own: --out FILE (it is FILE.journal) or --journal PATH",
      "batch")
  end
  for k, v in pairs(r.intake) do r.src[k] = v end
  open_journal(r)

  r.on_signal = function(_, count)
    sys.stderr:write(count == 1 and "\nhscode: stopping: finishing the requests in flight "
      .. "(Ctrl-C again to stop at once)\n" or "\nhscode: stopping now\n")
  end
  r.sig = signals.catch(r.on_signal)
  local ok, result = pcall(classify, r)
  if r.writer then r.writer.abandon() end
  r.sig.close()
  -- stopped before the checking pass ended (an input error, a signal): the journal as it was
  if not ok and not r.checked then pcall(r.state.rollback, r.state) end
  r.state:close()
  r.src:close()
  if not ok then
    -- (a dry run leaves every file as it found it)
    if not r.opts.dry_run and (r.temporary or (r.discard and not r.state.existed)) then
      remove_journal(r.jpath, r.temporary)
    end
    if type(result) == "table" and result.output_error then fail(EXIT.failed, result.output_error) end
    -- the journal failed during the run (a full disk): what is in it is kept
    if core.is_error(result) and result.kind == "store" then fail(EXIT.failed, result.message) end
    error(result, 0)
  end
  if result.dry then return dry_report(r, result.dry) end
  return report(r, result)
end

return M
