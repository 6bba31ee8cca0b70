--- CSV for the `hscode` command (RFC 4180): quoted fields with commas,
-- quotes and line breaks; CRLF, LF or CR line ends; a leading UTF-8 BOM is
-- dropped. Records are read one at a time from a stream, so a catalog of any
-- size takes the memory of one record.
-- @module avalara.cli.csv
local M = {}

--- An iterator over the records of a stream: each call returns the next
-- record (an array of strings, with `line`, the line it starts on), nil at
-- the end, or nil and a message naming the line.
-- @tparam function read returns the next chunk of text, or nil at the end
-- @treturn function
function M.reader(read)
  local buf, pos, line, eof, first = "", 1, 1, false, true

  local function more()
    if eof then return false end
    local chunk = read()
    if chunk == nil or chunk == "" then eof = true; return false end
    buf = buf:sub(pos) .. chunk
    pos = 1
    if first and #buf >= 3 then
      buf, first = buf:gsub("^\239\187\191", ""), false
    end
    return true
  end

  -- One record from `pos`: record, next position, next line; "more" when the
  -- buffer ends inside it; or nil, message.
  local function try()
    local i, n, ln = pos, #buf, line
    local record = { line = line }
    while true do
      local field
      if buf:sub(i, i) == '"' then
        local parts, k = {}, i + 1
        while true do
          local j = buf:find('"', k, true)
          if not j then
            if eof then return nil, string.format("line %d: a quoted field is never closed", record.line) end
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
        if not buf:sub(i, i):match("^[,\r\n]?$") then
          return nil, string.format("line %d: unexpected text after a closing quote", ln)
        end
      else
        local j = buf:find("[,\r\n]", i)
        if not j then
          if not eof then return "more" end
          j = n + 1
        end
        field = buf:sub(i, j - 1)
        i = j
      end
      record[#record + 1] = field
      local sep = buf:sub(i, i)
      if sep == "," then
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
        more()
      elseif r == nil then
        eof, buf, pos = true, "", 1 -- no record after an error
        return nil, a
      else
        pos, line = a, b
        return r
      end
    end
  end
end

--- Parses CSV text.
-- @string text
-- @return an array of records (arrays of strings, each with `line`, where
-- it starts), or nil, message
function M.parse(text)
  local given = false
  local next_record = M.reader(function()
    if given then return nil end
    given = true
    return text
  end)
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

--- One field, quoted where needed.
-- @param v a string or number
-- @treturn string
function M.field(v)
  if type(v) == "number" and v == math.floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then v = string.format("%d", v) end
  v = tostring(v)
  if v:find('[,"\r\n]') or v:find("^%s") or v:find("%s$") then
    return '"' .. v:gsub('"', '""') .. '"'
  end
  return v
end

--- One record as a CSV line, with its CRLF.
-- @tparam table fields strings or numbers
-- @treturn string
function M.line(fields)
  local out = {}
  for c, v in ipairs(fields) do out[c] = M.field(v) end
  return table.concat(out, ",") .. "\r\n"
end

--- Formats records (arrays of strings or numbers) as CSV with CRLF line
-- ends, quoting where needed.
-- @tparam table records
-- @treturn string
function M.format(records)
  local lines = {}
  for r, record in ipairs(records) do lines[r] = M.line(record) end
  return table.concat(lines)
end

return M
