--- Where `hscode batch` writes its results, and how (CSV, JSON, JSON Lines
-- or a table), row by row in input order.
--
-- What `--out` names is never destroyed: a regular file (or a new one) is
-- written beside it under a new temporary name (hidden, random, created
-- exclusively and never through a link: `avalara.private`) and renamed over
-- it at the end (atomic, keeping its permissions); a symbolic link is followed (its
-- target is replaced, the link stays); a FIFO, a device or `-` (stdout) is
-- written directly. A directory, or a place that cannot be written, is
-- refused when the output is opened, before any request.
-- @module avalara.cli.output
local uv = require "avalara.cli.uv"
local json = require "avalara.cli.json"
local core = require "avalara.core"
local csv = require "avalara.csv"
local input = require "avalara.cli.input"
local private = require "avalara.private"
local sys = core.sys

-- The text of a failure another module returned: a message, or an error table's message.
local function message_of(e)
  return core.is_error(e) and e.message or tostring(e)
end

local M = {}

--- The result columns, after the input's own (a column of the input with one
-- of these names, compared as `input.normal` does, takes the result's value).
M.RESULT_COLUMNS = { "itemCode", "description", "country", "status", "hsCode", "hsCodeDescription", "resolution",
  "id", "errorKind", "errorStatus", "errorCode", "errorMessage", "requestId" }

--- The columns a spreadsheet output (`excel`) writes as text (`avalara.csv`'s
-- `text_field`: leading zeros kept), by their `input.normal` names.
M.CODE_COLUMNS = { itemcode = true, hscode = true }

--- The format an output path implies: `csv`, `json` or `jsonl` (CSV for any other name).
-- @string path
-- @treturn string
function M.format_of(path)
  local lower = path:lower()
  if lower:match("%.jsonl$") or lower:match("%.ndjson$") then return "jsonl" end
  if lower:match("%.json$") then return "json" end
  return "csv"
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

--- What `--out PATH` is: `{kind = "stdout" | "direct" | "file", path, real, mode}`
-- (`real`: the file a symbolic link leads to), or nil and why it cannot be written.
-- @string path
function M.target(path)
  if path == "-" then return { kind = "stdout", path = "-" } end
  local real, st = path, uv.fs_lstat(path)
  if st and st.type == "link" then
    local resolved = uv.fs_realpath(path)
    if resolved then
      real, st = resolved, uv.fs_stat(resolved)
    else
      local link = uv.fs_readlink(path)
      real, st = link:sub(1, 1) == "/" and link or dirname(path) .. "/" .. link, nil
    end
  end
  if st and st.type == "directory" then return nil, "--out " .. path .. " is a directory" end
  if st and st.type ~= "file" then return { kind = "direct", path = path, real = real } end
  local dir = dirname(real)
  local dst = uv.fs_stat(dir)
  if not dst or dst.type ~= "directory" then
    return nil, "cannot write " .. path .. ": no directory " .. dir
  end
  if not uv.fs_access(dir, "W") then return nil, "cannot write " .. path .. ": " .. dir .. " is not writable" end
  if st and not uv.fs_access(real, "W") then return nil, "cannot write " .. path .. ": permission denied" end
  return { kind = "file", path = path, real = real, mode = st and st.mode % 4096 or nil }
end

--- The name pattern of the temporary file a regular output is written to:
-- `.<name>.<random>.hscode-partial` beside it. Each run makes its own; a
-- run killed with SIGKILL leaves one, which the next run on the same output
-- (the journal's lock held) removes if it is this user's own regular file.
M.PARTIAL_SUFFIX = ".hscode-partial"

-- Removes the partial files that runs killed earlier left beside `real`.
local function remove_stale_partials(real)
  local dir, base = dirname(real), real:match("([^/]*)$")
  local pattern = "^%." .. base:gsub("%p", "%%%0") .. "%.%x+" .. M.PARTIAL_SUFFIX:gsub("%p", "%%%0") .. "$"
  local scan = uv.fs_scandir(dir)
  if not scan then return end
  local me = sys.euid()
  for name in function() return uv.fs_scandir_next(scan) end do
    if name:match(pattern) then
      local info = sys.lstat(dir .. "/" .. name)
      if info and info.type == "file" and info.uid == me then os.remove(dir .. "/" .. name) end
    end
  end
end

-- ---------------------------------------------------------------- rows

-- Cuts `s` to `width` characters (UTF-8 aware), marking the cut with "...".
local function clip(s, width)
  local chars = {}
  for ch in s:gmatch("[^\128-\191][\128-\191]*") do chars[#chars + 1] = ch end
  if #chars <= width then return s end
  return table.concat(chars, "", 1, math.max(0, width - 3)) .. "..."
end

--- The status column of a result: the model's status, else `FAILED`,
-- `NOT_ATTEMPTED` (a batch stopped before it) or `INVALID` (a row not valid).
-- @param result a model or an error
-- @treturn string
function M.status_of(result)
  if core.is_error(result) then
    if result.invalid then return "INVALID" end
    if result.not_attempted then return "NOT_ATTEMPTED" end
    return "FAILED"
  end
  return tostring(result.status)
end

--- The keys of a row's result in JSON output, in this order (after the input's columns).
M.RESULT_KEYS = { "itemCode", "description", "country", "status", "hsCode", "hsCodeDescription", "resolution", "id",
  "error" }

-- The result fields of a row (no secret: errors carry their kind, status,
-- code, message and request id only).
local function result_fields(item, result, describe)
  local r = { itemCode = item.itemCode, description = item.description, country = item.countryOfDestination,
    status = M.status_of(result) }
  if core.is_error(result) then
    r.id = result.id
    r.error = { kind = result.kind, status = result.status, code = result.code, message = result.message,
      requestId = result.request_id }
  else
    r.hsCode, r.resolution, r.id = result.hsCode, result.resolution, result.id
    if describe and result.hsCode then r.hsCodeDescription = (describe(item.countryOfDestination, result.hsCode)) end
  end
  return r
end

--- Makes the writer of a batch's output.
-- @tparam table t a target (`target`)
-- @string format `csv`, `json`, `jsonl` or `table`
-- @param src the input (`avalara.cli.input`: its columns and values)
-- @tparam table opts `{stdout, describe = function(country, code), width, formulas, excel}` (`formulas`:
-- CSV cells written as they are, without the quote that neutralises a formula; `excel`: CSV for a
-- spreadsheet, a UTF-8 BOM first and the code columns (`CODE_COLUMNS`) written as text)
-- @return the writer (`row(item, result)`, `finish()`, `abandon()`), or nil, message
function M.open(t, format, src, opts)
  local w = { target = t, rows = 0 }
  local f, err
  if t.kind == "stdout" then
    f = opts.stdout
  elseif t.kind == "direct" then
    f, err = io.open(t.path, "wb")
  else
    remove_stale_partials(t.real)
    f, err = private.temp_beside(t.real, M.PARTIAL_SUFFIX, t.mode)
    if f then w.partial = err end
  end
  if not f then
    return nil, "cannot write " .. t.path .. ": " .. message_of(err):gsub("^cannot create ", ""):gsub("^[^:]*: ", "")
  end
  w.file = f

  -- CSV columns: the input's, then the result columns it does not have.
  local columns, slot, as_text = {}, {}, {}
  for c, name in ipairs(src.columns or {}) do
    columns[c] = name
    local n = input.normal(name)
    if not slot[n] then slot[n] = c end
  end
  for _, name in ipairs(M.RESULT_COLUMNS) do
    local n = input.normal(name)
    if not slot[n] then
      columns[#columns + 1] = name
      slot[n] = #columns
    end
  end

  for c, name in ipairs(columns) do as_text[c] = opts.excel and M.CODE_COLUMNS[input.normal(name)] or nil end

  local function emit(s)
    local ok, werr = f:write(s)
    if not ok then error({ output_error = "cannot write " .. t.path .. ": " .. message_of(werr) }, 0) end
  end

  local width = opts.width or 100
  local item_w, code_w, status_w = math.max(8, math.min(16, math.floor(width / 5) - 4)), 10, 20
  local text_w = math.max(8, width - item_w - code_w - status_w - 10)
  local table_fmt = "%-" .. item_w .. "s  %-2s  %-" .. code_w .. "s  %-" .. status_w .. "s  %s"
  -- CSV cells that start a formula get a leading ' unless opts.formulas (see avalara.csv)
  local csv_opts = { formulas = opts.formulas and true or nil, text = as_text }
  local function header()
    emit((opts.excel and csv.BOM or "") .. csv.line(columns, { formulas = csv_opts.formulas }))
  end

  function w.row(item, result)
    local r = result_fields(item, result, opts.describe)
    w.rows = w.rows + 1
    if format == "csv" then
      if w.rows == 1 then header() end
      local values = src:values(item)
      local e = r.error or {}
      local flat = { errorKind = e.kind, errorStatus = e.status, errorCode = e.code, errorMessage = e.message,
        requestId = e.requestId }
      for _, name in ipairs(M.RESULT_COLUMNS) do
        local v = r[name]
        if v == nil then v = flat[name] end
        values[slot[input.normal(name)]] = v
      end
      for c = 1, #columns do if values[c] == nil then values[c] = "" end end
      emit(csv.line(values, csv_opts))
    elseif format == "table" then
      if w.rows == 1 then
        emit((table_fmt:format("ITEM", "CC", "HS CODE", "STATUS", "DESCRIPTION"):gsub("%s+$", "")) .. "\n")
      end
      local text = r.hsCodeDescription or r.resolution or (r.error and r.error.message) or ""
      emit((table_fmt:format(clip(r.itemCode or "", item_w), r.country or "-", r.hsCode or "-", r.status,
        clip(text, text_w))
        :gsub("%s+$", "")) .. "\n")
    else
      local obj, first = {}, {}
      if type(item.fields) == "table" then
        if src.kind == "csv" then
          for c, name in ipairs(src.columns) do obj[name], first[c] = item.fields[c], name end
        else
          for k, v in pairs(item.fields) do obj[k] = v end
        end
      end
      for k, v in pairs(r) do obj[k] = v end
      -- the same key order every row: the input's columns, then the result's
      for _, k in ipairs(M.RESULT_KEYS) do first[#first + 1] = k end
      local line = json.encode(obj, first)
      if format == "jsonl" then emit(line .. "\n")
      else emit((w.rows == 1 and "[\n  " or ",\n  ") .. line) end
    end
  end

  -- The end of a valid document (also after an interrupt).
  local function close_document()
    if format == "json" then emit(w.rows == 0 and "[]\n" or "\n]\n")
    elseif format == "csv" and w.rows == 0 then header() end
  end

  --- Ends the output: the document closed, flushed, and for a regular file
  -- synced and renamed over the target.
  function w.finish()
    local ok, why = pcall(close_document)
    if not ok then return nil, type(why) == "table" and why.output_error or tostring(why) end
    f:flush()
    if t.kind == "stdout" then return true end
    if not w.partial then
      f:close()
      return true
    end
    local synced, serr = sys.fsync(f)
    f:close()
    if not synced then
      os.remove(w.partial)
      return nil, "cannot write " .. t.path .. ": " .. message_of(serr)
    end
    local renamed, rerr = os.rename(w.partial, t.real)
    if not renamed then
      os.remove(w.partial)
      return nil, "cannot write " .. t.path .. ": " .. message_of(rerr)
    end
    return true
  end

  --- Gives up: the temporary file is removed, the target untouched.
  function w.abandon()
    if t.kind ~= "stdout" then pcall(f.close, f) end
    if w.partial then os.remove(w.partial) end
  end

  return w
end

return M
