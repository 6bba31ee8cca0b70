-- The man page hscode.1 (issue 23, conveniences): made at build time from
-- the command line's own tables and help texts (tools/man.lua), installed by
-- `make install` as PREFIX/share/man/man1/hscode.1; groff formats it without
-- a warning; it names every command, every option of each and every exit
-- status of docs/cli.md's table.
local cli = require "avalara.cli"
local files = require "spec.support.files"
local H = require "spec.support.cli"

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

describe("hscode.1", function()
  local dir, page
  local lua = (os.getenv("SPEC_LUA") or "lua5.4"):match("([^/%s]+)$")

  setup(function()
    dir = H.tmpdir()
    -- what a packager runs; the page is made on the way
    local out = table.concat(files.lines("cd " .. quote(H.ROOT) .. " && make --no-print-directory -s install LUA="
      .. lua .. " PREFIX=/usr DESTDIR=" .. quote(dir) .. " 2>&1; echo rc=$?"), "\n")
    assert.matches("rc=0$", out)
    page = H.slurp(dir .. "/usr/share/man/man1/hscode.1")
  end)
  teardown(function() H.rmdir(dir) end)

  -- The page's text with roff's escapes of - undone; a section of it.
  local function text() return (page:gsub("\\%-", "-")) end
  local function section(name, level)
    local head = "\n%." .. (level or "SH") .. " " .. name .. "\n"
    local s = text():match(head .. (level and "(.-)\n%.S[HS] " or "(.-)\n%.SH ")) or text():match(head .. "(.*)$")
    return assert(s, "no section " .. name)
  end

  it("make install puts it at PREFIX/share/man/man1/hscode.1, the page make man makes", function()
    assert.truthy(page, "not installed")
    assert.equal(files.read(H.ROOT .. "/build/man/hscode.1"), page)
    assert.truthy(page:find('\n.TH HSCODE 1 "" "avalara-hscode ' .. require("avalara")._VERSION, 1, true))
  end)

  it("groff formats it without a warning (-ww), and man reads it", function()
    H.write(dir .. "/hscode.1", page)
    local out = table.concat(files.lines("groff -man -Tutf8 -ww -z " .. quote(dir .. "/hscode.1") .. " 2>&1; echo rc=$?"),
      "\n")
    assert.equal("rc=0", out)
    local shown = table.concat(files.lines("MANWIDTH=100 man -l " .. quote(dir .. "/hscode.1") .. " 2>&1"), "\n")
    assert.matches("\nNAME\n%s+hscode %- classify products", shown)
    assert.matches("\nEXIT STATUS\n", shown)
  end)

  it("names every command and every option of each (walking the parser's tables), and the global ones", function()
    local d = cli.describe()
    for _, name in ipairs(d.order) do
      local s = section(name, "SS")
      assert.truthy(s:find("\nhscode " .. name, 1, true), "no usage line for " .. name)
      local declared = d.commands[name].options
      local list = {}
      if declared[1] then
        for _, o in ipairs(declared) do list[#list + 1] = o end
      else
        for option, spec in pairs(declared) do list[#list + 1] = { option, spec[1] } end
      end
      for _, o in ipairs(list) do
        assert.truthy(s:find("\\fB--" .. o[1] .. "\\fR", 1, true), name .. ": no --" .. o[1])
        -- with its argument, as the help writes it
        if o[2] then
          assert.truthy(s:find("\\fB%-%-" .. o[1]:gsub("%-", "%%-") .. "\\fR \\fI%u"), name .. " --" .. o[1] .. " ARG")
        end
      end
    end
    local options = section("OPTIONS")
    for _, o in ipairs(d.global_options) do
      assert.truthy(options:find("\\fB--" .. o[1] .. "\\fR", 1, true), "no global --" .. o[1])
    end
    -- the environment variables the global options name
    local env = section("ENVIRONMENT")
    for _, var in ipairs { "AVALARA_ENVIRONMENT", "AVALARA_ACCOUNT_ID", "AVALARA_LICENSE_KEY", "AVALARA_COMPANY_ID" } do
      assert.truthy(env:find("\\fB" .. var .. "\\fR", 1, true), var)
    end
  end)

  it("gives every exit status of docs/cli.md's table", function()
    local doc = files.read(H.ROOT .. "/docs/cli.md")
    local tab = assert(doc:match("\nExit status, the same for every command.-\n\n(|.-)\n\n"))
    local statuses = {}
    for status in tab:gmatch("\n| (%d+) |") do statuses[#statuses + 1] = status end
    assert.is_true(#statuses >= 6)
    local exit = section("EXIT STATUS")
    for _, status in ipairs(statuses) do
      assert.truthy(exit:find("%f[%d]" .. status .. "%f[%D]"), "exit status " .. status .. " not in the man page")
    end
  end)
end)
