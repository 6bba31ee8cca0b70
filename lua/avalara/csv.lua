--- CSV (RFC 4180): quoted fields with commas,
-- quotes and line breaks; CRLF, LF or CR line ends; a leading UTF-8 BOM is
-- dropped. Records are read one at a time from a stream, so a catalog of any
-- size takes the memory of one record, and a record is capped
-- (`MAX_RECORD`, 1 MiB by default).
--
-- Formulas: a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage
-- return is a formula to a spreadsheet (Excel, LibreOffice, Google Sheets),
-- which may run it (`=HYPERLINK(...)`, DDE). The writer neutralises such a
-- cell by default, as OWASP advises: it prefixes it with a single quote
-- (`-5` is written `'-5`, `=A1` `'=A1`). The reader undoes that: a cell
-- that is a quote followed by such a start is read without its first quote,
-- so what the writer wrote reads back as it was. `{formulas = true}` turns
-- both off (cells written and read as they are).
--
-- Spreadsheet text (`--excel`): a code cell written with `{text = ...}` is
-- `="0101"`, which Excel and Google Sheets show as the text 0101 (its leading
-- zero kept) instead of the number 101; the reader reads such a cell
-- (`="` text without a quote `"`) as its text, unless `formulas` is true.
-- Delimiters: `,` by default; `{delimiter = ";"}` (or a tab) reads a file
-- that European Excel saves, and `{delimiter = "auto"}` takes the one of
-- `,` `;` and tab that the header line (the first record) has most of,
-- outside quotes (`detect`; a tie or none: `,`).
--
-- A foundation: the CLI and the catalog reader (`avalara.items.catalog`) both read CSV
-- here (was `avalara.cli.csv`).
-- @module avalara.csv
local core = require "avalara.core"

local M = {}

--- The largest record the reader takes by default, in bytes (1 MiB, line end included).
M.MAX_RECORD = 1024 * 1024

-- A cell a spreadsheet would take for a formula, possibly behind quotes that
-- neutralised it already (the writer adds one more, so that reading, which
-- drops one from a NEUTRALISED cell, gives back exactly what was written).
local FORMULA = "^'*[=+%-@\t\r]"
local NEUTRALISED = "^'+[=+%-@\t\r]"
-- A cell written as spreadsheet text (`text_field`): `="..."`, no quote inside.
local TEXT = '^="[^"]*"$'

--- The UTF-8 byte order mark, which tells Excel that a CSV file is UTF-8.
M.BOM = "\239\187\191"

--- The delimiters a reader takes, by the names a user gives them: `,`, `;`,
-- `tab` (or `\t`, or a tab itself).
M.DELIMITERS = { [","] = ",", [";"] = ";", tab = "\t", ["\\t"] = "\t", ["\t"] = "\t" }

--- The delimiter a user names (`,`, `;`, `tab`, `\t`), or nil and a message naming it.
-- @string name
-- @return the delimiter (one character), or nil, message
function M.delimiter(name)
  local d = type(name) == "string" and M.DELIMITERS[name:lower()]
  if d then return d end
  return nil, "the delimiter must be ',', ';' or tab (also written \\t), not '" .. tostring(name) .. "'"
end

--- The delimiter of a CSV text, from its first record (the header line):
-- the one of `,`, `;` and tab found most often outside quoted fields; `,`
-- when none is found, or on a tie with `,`. A leading BOM is ignored.
-- @string text the start of the file (the header line at least)
-- @treturn string
function M.detect(text)
  local counts, quoted = { [","] = 0, [";"] = 0, ["\t"] = 0 }, false
  for i = (text:sub(1, 3) == M.BOM) and 4 or 1, #text do
    local c = text:sub(i, i)
    if c == '"' then quoted = not quoted
    elseif not quoted then
      if c == "\n" or c == "\r" then break end
      if counts[c] then counts[c] = counts[c] + 1 end
    end
  end
  local best = ","
  for _, d in ipairs { ";", "\t" } do
    if counts[d] > counts[best] then best = d end
  end
  return best
end

--- An iterator over the records of a stream: each call returns the next
-- record (an array of strings, with `line`, the line it starts on), nil at
-- the end, or nil, err: kind "input", `code` `"too_long"` for a record over
-- the limit, `"syntax"` otherwise, `row` the line, and a message naming it. The time taken is linear
-- in the size of the stream, whatever the size of its records.
-- @tparam function read returns the next chunk of text, or nil at the end
-- @tparam[opt] table opts `{max_record = bytes (default MAX_RECORD), formulas = true (keep a
-- neutralising quote), delimiter = "," (or ";", "\t", or "auto": `detect` on the first chunk)}`
-- @treturn function
function M.reader(read, opts)
  opts = opts or {}
  local max = opts.max_record or M.MAX_RECORD
  if type(max) ~= "number" or max < 1 then error("csv.reader: max_record must be a positive number", 2) end
  local delim = opts.delimiter or ","
  if delim ~= "auto" and delim ~= "," and delim ~= ";" and delim ~= "\t" then
    error("csv.reader: delimiter must be ',', ';', '\\t' or 'auto'", 2)
  end
  local plain, after_quote, sep_byte -- set once the delimiter is known
  local function use(d)
    delim, plain, after_quote, sep_byte = d, "[" .. d .. "\r\n]", "^[" .. d .. "\r\n]?$", d
  end
  if delim ~= "auto" then use(delim) end
  local unquote = not opts.formulas
  local buf, pos, line, eof, first = "", 1, 1, false, true
  local quotes = false -- whether the buffer has a single quote (a cell may need unquoting)

  -- Reads at least as much text again as is buffered and not consumed (or up
  -- to the end, or past the limit): a record that spans many chunks is then
  -- scanned a bounded number of times per byte, not once per chunk.
  local function more()
    if eof then return false end
    local kept = #buf - pos + 1
    local parts, got = {}, 0
    repeat
      local chunk = read()
      if chunk == nil or chunk == "" then eof = true; break end
      parts[#parts + 1] = chunk
      got = got + #chunk
    until got >= kept or kept + got > max
    if got == 0 then return false end
    buf = buf:sub(pos) .. table.concat(parts)
    pos = 1
    quotes = unquote and buf:find("'", 1, true) ~= nil
    if first and #buf >= 3 then
      buf, first = buf:gsub("^\239\187\191", ""), false
    end
    return true
  end

  local function too_long(ln)
    return nil, string.format("line %d: a record is longer than %d bytes", ln, max), "too_long"
  end

  -- One record from `pos`: record, next position, next line; "more" when the
  -- buffer ends inside it; or nil, message, reason.
  local function try()
    if delim == "auto" then -- the header line whole (or the end) first
      if not (eof or buf:find("[\r\n]", pos)) then return "more" end
      use(M.detect(buf:sub(pos)))
    end
    local i, n, ln = pos, #buf, line
    local record = { line = line }
    while true do
      local field
      if buf:sub(i, i) == '"' then
        local parts, k = {}, i + 1
        while true do
          local j = buf:find('"', k, true)
          if not j then
            if eof then
              return nil, string.format("line %d: a quoted field is never closed", record.line), "syntax"
            end
            return "more"
          end
          if j == n and not eof then return "more" end -- a closing quote, or the first of two?
          parts[#parts + 1] = buf:sub(k, j - 1)
          if buf:sub(j + 1, j + 1) ~= '"' then i = j + 1; break end
          parts[#parts + 1] = '"'
          k = j + 2
        end
        field = table.concat(parts)
        ln = ln + select(2, field:gsub("\n", ""))
        if not buf:sub(i, i):match(after_quote) then
          return nil, string.format("line %d: unexpected text after a closing quote", ln), "syntax"
        end
      else
        local j = buf:find(plain, i)
        if not j then
          if not eof then return "more" end
          j = n + 1
        end
        field = buf:sub(i, j - 1)
        i = j
      end
      if unquote and field:byte(1) == 61 and field:find(TEXT) then field = field:sub(3, -2)
      elseif quotes and field:find(NEUTRALISED) then field = field:sub(2) end
      record[#record + 1] = field
      local sep = buf:sub(i, i)
      if sep == sep_byte then
        i = i + 1
      else
        if sep == "\r" then
          if i == n and not eof then return "more" end
          i = i + ((buf:sub(i + 1, i + 1) == "\n") and 2 or 1)
        elseif sep == "\n" then
          i = i + 1
        end
        return record, i, ln + 1
      end
    end
  end

  return function()
    while true do
      if pos > #buf and not more() then return nil end
      local r, a, b = try()
      if r == "more" then
        if #buf - pos + 1 > max then r, a, b = too_long(line) else more() end
      elseif r ~= nil and a - pos > max then
        r, a, b = too_long(line)
      end
      if r == nil then
        eof, buf, pos = true, "", 1 -- no record after an error
        return nil, core.error { kind = "input", code = b, message = a, row = tonumber(a:match("^line (%d+)")),
          retryable = false }
      elseif r ~= "more" then
        pos, line = a, b
        return r
      end
    end
  end
end

--- Parses CSV text.
-- @string text
-- @tparam[opt] table opts as for `reader`
-- @return an array of records (arrays of strings, each with `line`, where
-- it starts), or nil, err (as `reader`)
function M.parse(text, opts)
  local given = false
  local next_record = M.reader(function()
    if given then return nil end
    given = true
    return text
  end, opts)
  local records = {}
  while true do
    local r, err = next_record()
    if r == nil then
      if err then return nil, err end
      return records
    end
    records[#records + 1] = r
  end
end

--- One field, quoted where needed; a cell a spreadsheet would take for a
-- formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return)
-- gets a leading single quote, unless `formulas` is true.
-- @param v a string or number
-- @tparam[opt] boolean formulas write such a cell as it is
-- @treturn string
function M.field(v, formulas)
  if type(v) == "number" and v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then v = string.format("%d", v) end
  v = tostring(v)
  if not formulas and v:find(FORMULA) then v = "'" .. v end
  if v:find('[,"\r\n]') or v:find("^%s") or v:find("%s$") then
    return '"' .. v:gsub('"', '""') .. '"'
  end
  return v
end

--- One field as spreadsheet text: `="0101"` (CSV-quoted), which a
-- spreadsheet shows as 0101, not the number 101. An empty value, or one with
-- a quote or a line break, is written as `field` writes it.
-- @param v a string or number
-- @tparam[opt] boolean formulas as for `field`
-- @treturn string
function M.text_field(v, formulas)
  if type(v) == "number" and v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then v = string.format("%d", v) end
  v = tostring(v)
  if v == "" or v:find('["\r\n]') then return M.field(v, formulas) end
  return '"=""' .. v .. '"""'
end

--- One record as a CSV line, with its CRLF.
-- @tparam table fields strings or numbers
-- @tparam[opt] table opts `{formulas = true}`: cells written as they are (see `field`); `text`: a set of
-- column numbers written as spreadsheet text (see `text_field`)
-- @treturn string
function M.line(fields, opts)
  local formulas, text = opts and opts.formulas, opts and opts.text or {}
  local out = {}
  for c, v in ipairs(fields) do out[c] = text[c] and M.text_field(v, formulas) or M.field(v, formulas) end
  return table.concat(out, ",") .. "\r\n"
end

--- Formats records (arrays of strings or numbers) as CSV with CRLF line
-- ends, quoting where needed and neutralising formulas (see `field`).
-- @tparam table records
-- @tparam[opt] table opts as for `line`
-- @treturn string
function M.format(records, opts)
  local lines = {}
  for r, record in ipairs(records) do lines[r] = M.line(record, opts) end
  return table.concat(lines)
end

return M
