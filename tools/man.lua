-- Writes the man page hscode.1 (roff, man macros) to stdout, made at build
-- time (`make man`, `make install`) from the command line's own tables and
-- help texts (`avalara.cli.describe`, read through the model of
-- `avalara.cli.completion`): every command, every option, the exit statuses,
-- the environment variables. Nothing in it is written by hand, so it says
-- what `hscode --help` and `hscode COMMAND --help` say.
--
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/lua5.4/?.so;;' lua5.4 tools/man.lua >hscode.1
local avalara = require "avalara"
local cli = require "avalara.cli"
local completion = require "avalara.cli.completion"

local m = completion.model(cli.describe())
local out = {}
local function add(s) out[#out + 1] = s end

-- Text for roff: backslashes and minus signs escaped, no request at a line's start.
local function esc(s)
  s = s:gsub("\\", "\\e"):gsub("%-", "\\-")
  if s:match("^[.']") then s = "\\&" .. s end
  return s
end

-- An item's term: options and words in bold, metavars in italics.
local function term(s)
  local words = {}
  for word in s:gmatch("%S+") do
    local body, tail = word:match("^(.-)([,]?)$")
    local font = (body:match("^%-") or body:match("^[a-z]")) and "B" or "I"
    words[#words + 1] = "\\f" .. font .. esc(body) .. "\\fR" .. tail
  end
  return table.concat(words, " ")
end

local function lines_of(text)
  local list = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do list[#list + 1] = line end
  return list
end

-- A help text in roff: usage lines kept as they are, paragraphs, option and
-- definition lists (.TP), indented examples (.nf), "Heading:" lines (.SS).
local function convert(text)
  local mode -- nil, "para", "item", "usage", "verbatim"
  local function close()
    if mode == "usage" or mode == "verbatim" then add(".fi") end
    if mode == "verbatim" then add(".RE") end
    mode = nil
  end
  local lines = lines_of(text)
  for i, line in ipairs(lines) do
    local usage = line:match("^Usage: (hscode.*)$") or (mode == "usage" and line:match("^%s+(hscode .*)$"))
    local option, desc = line:match("^  (%-[^ ].-)%s%s+(%S.*)$")
    if not option then option = line:match("^  (%-%S*[^ ]*)$") end
    local name, def = line:match("^(%l%S*.-)%s%s%s+(%S.*)$")
    local heading = line:match("^(%u[^:]*):$")
    if line:match("^%s*$") then
      close()
    elseif usage then
      if mode ~= "usage" then
        close()
        add(".PP")
        add(".nf")
        mode = "usage"
      end
      add(esc(usage))
    elseif option or name then
      close()
      add(".TP")
      add(term(option or name))
      if desc or def then add(esc(desc or def)) end
      mode = "item"
    elseif mode == "item" and line:match("^%s%s%s%s+%S") then
      add(esc(line:match("^%s*(.-)%s*$")))
    elseif line:match("^%s%s%s%s+%S") then
      if mode ~= "verbatim" then
        close()
        add(".RS")
        add(".nf")
        mode = "verbatim"
      end
      add(esc(line:match("^%s*(.-)%s*$")))
    elseif heading and lines[i + 1] and lines[i + 1]:match("^  %-") then
      close()
      add(".SS " .. esc(heading))
    else
      if mode ~= "para" then
        close()
        add(".PP")
        mode = "para"
      end
      add(esc(line:match("^%s*(.-)%s*$")))
    end
  end
  close()
end

-- The paragraphs of the main help: what it says besides the commands and the global options.
local description, exit_status = {}, nil
for paragraph in (m.main_help .. "\n\n"):gmatch("(.-)\n\n+") do
  if paragraph:match("^Exit status") then
    exit_status = paragraph
  elseif not paragraph:match("^Usage:") and not paragraph:match("^Commands:")
    and not m.global_help:find(paragraph, 1, true) then
    description[#description + 1] = paragraph
  end
end
assert(exit_status, "tools/man.lua: no \"Exit status\" paragraph in hscode --help")

add(".\\\" hscode.1: made by tools/man.lua from hscode's own tables and help texts; do not edit.")
add('.TH HSCODE 1 "" "avalara-hscode ' .. avalara._VERSION .. '" "User Commands"')
add(".nh")
add(".SH NAME")
add("hscode \\- classify products into HS tariff codes with Avalara")
add(".SH SYNOPSIS")
add(".B hscode")
add("[\\fIoptions\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]")
add(".br")
add(".B hscode help")
add("[\\fICOMMAND\\fR]")
add(".br")
add(".B hscode \\-\\-version")
add(".SH DESCRIPTION")
convert(table.concat(description, "\n\n"))
add(".SH COMMANDS")
for _, c in ipairs(m.commands) do
  add(".SS " .. esc(c.name))
  convert(c.help)
end
add(".SS help")
convert("Usage: hscode help [COMMAND]\n\nShows the help of hscode, or a command's (also hscode COMMAND --help).")
add(".SH OPTIONS")
add("Options that every command takes, before or after the command name.")
convert(m.global_help)
add(".SH EXIT STATUS")
convert(exit_status)
add(".SH ENVIRONMENT")
for _, o in ipairs(m.global) do
  for var in o.description:gmatch("%[(AVALARA_[%u_]+)%]") do
    add(".TP")
    add("\\fB" .. esc(var) .. "\\fR")
    add("as \\fB\\-\\-" .. esc(o.name) .. "\\fR")
  end
end
add(".SH SEE ALSO")
add("\\fBhscode completion bash\\fR, \\fBhscode completion zsh\\fR; docs/cli.md in the source distribution.")

io.write(table.concat(out, "\n"), "\n")
