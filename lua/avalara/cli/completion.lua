--- `hscode completion bash|zsh`: a shell completion script, made from the
-- command line's own tables (`avalara.cli.describe`: the commands, their
-- options as the parser declares them, their help texts), never from a list
-- kept by hand: a new command or option is completed as soon as it exists.
--
-- What the scripts complete: the commands (and `help COMMAND`), the
-- subcommands (the words after the command in its help's usage lines, as
-- `items classify`), the long options of the command and the global ones
-- (before the command too), file names where an option takes a FILE, PATH
-- or OUT and where the usage line takes a FILE, and the values of an option
-- whose help lists them ("csv, json, jsonl or table"; or `values` in its
-- declaration). The man page (tools/man.lua) reads the same `model`.
-- @module avalara.cli.completion
local M = {}

--- The command's name.
M.name = "completion"
--- What it does, for `hscode --help`.
M.summary = "print the bash or zsh completion script"

--- The command's own options: none.
M.options = {}

--- Its help text.
M.help = [[
Usage: hscode completion bash
       hscode completion zsh

Prints a script that completes hscode's commands, options, their values
and file names in bash or zsh. It is made from hscode's own tables of
commands and options, so it always matches this hscode.

bash: in ~/.bashrc,
    eval "$(hscode completion bash)"
or once, with the bash-completion package:
    hscode completion bash >~/.local/share/bash-completion/completions/hscode

zsh: once, in a folder of $fpath (before compinit runs in ~/.zshrc):
    hscode completion zsh >~/.zfunc/_hscode
or in ~/.zshrc, after compinit:
    eval "$(hscode completion zsh)"
]]

-- Metavars of options that name a file.
local FILE_ARGS = { FILE = true, PATH = true, OUT = true, DIR = true }

local function lines_of(text)
  local list = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do list[#list + 1] = line end
  return list
end

-- The description of --name in a help text: the words after its name (and
-- metavar) on its line and the more indented lines below; "" if none.
local function described(help, name)
  local lines = lines_of(help or "")
  for i, line in ipairs(lines) do
    local after = line:match("^%s+%-%a, %-%-(.*)$") or line:match("^%s+%-%-(.*)$")
    if after and (after == name or after:sub(1, #name + 1) == name .. " ") then
      local parts = { after:sub(#name + 1):match("^%s*%S*%s%s+(.-)%s*$") or "" }
      for j = i + 1, #lines do
        local more = lines[j]:match("^%s%s%s%s%s%s+([^%s%-].-)%s*$")
        if not more then break end
        parts[#parts + 1] = more
      end
      return table.concat(parts, " "), parts[1]
    end
  end
  return "", ""
end

-- The values a description lists first: "csv, json, jsonl or table (...)",
-- "production (default), sandbox or local", "2012 (default) or identity".
local function enumerated(text)
  local s = text:gsub("%s*%(default%)", "")
  local head, last = s:match("^(.-) or ([%w][%w%-]*)")
  if not head then return nil end
  local values = {}
  for word in (head .. ","):gmatch("%s*([^,]*),") do
    if not word:match("^[%w][%w%-]*$") then return nil end
    values[#values + 1] = word
  end
  values[#values + 1] = last
  return values
end

-- Options as `{name, metavar, short, values, file, text}`, from a list of
-- {name, metavar?, values = ...} or a map name -> {metavar?, values = ...}.
local function options(declared, short, help)
  local list = {}
  if declared[1] == nil then
    for name, spec in pairs(declared) do list[#list + 1] = { name, spec[1], values = spec.values } end
    table.sort(list, function(a, b) return a[1] < b[1] end)
  else
    for i, o in ipairs(declared) do list[i] = o end
  end
  local out = {}
  for i, o in ipairs(list) do
    local text, first = described(help, o[1])
    local metavar = o[2]
    out[i] = { name = o[1], metavar = metavar, short = short[o[1]], text = first, description = text,
      file = metavar ~= nil and FILE_ARGS[metavar] or false,
      values = o.values or (metavar and not FILE_ARGS[metavar] and enumerated(text)) or nil }
  end
  return out
end

-- The subcommands (lowercase words after the command in the usage lines)
-- and which of them, or the command itself (""), take a FILE argument.
local function usage(name, help)
  local subs, files, seen = {}, {}, {}
  for _, line in ipairs(lines_of(help)) do
    local rest = line:match("^Usage: hscode " .. name .. "(.*)$") or line:match("^%s+hscode " .. name .. "(.*)$")
    if rest and (rest == "" or rest:match("^ ")) then
      local sub = rest:match("^ ([a-z][%w%-]*)%s") or rest:match("^ ([a-z][%w%-]*)$")
      if sub and not seen[sub] then
        seen[sub] = true
        subs[#subs + 1] = sub
      end
      local where = sub and rest:sub(#sub + 2) or rest
      if (" " .. where .. " "):match("[%s|]FILE[%s.]") or (" " .. where .. " "):match("[%s|]PATH[%s.]") then
        files[#files + 1] = sub or ""
      end
    end
  end
  return subs, files
end

--- What the completion scripts and the man page are made of.
-- @tparam table d the command line's tables (`avalara.cli.describe()`)
-- @treturn table `{global, commands, main_help, global_help}`: `global` the global options, `commands` a list
-- of `{name, summary, help, options, subcommands, files}`; an option is `{name, metavar, short, values, file,
-- text, description}` (`file`: it takes a file name; `values`: the values it takes, when they are few)
function M.model(d)
  local commands = {}
  for _, name in ipairs(d.order) do
    local c = d.commands[name]
    local subs, files = usage(name, c.help)
    commands[#commands + 1] = { name = name, summary = c.summary, help = c.help, subcommands = subs,
      files = files, options = options(c.options, d.short, c.help) }
  end
  return { global = options(d.global_options, d.short, d.global_help), commands = commands,
    main_help = d.main_help, global_help = d.global_help }
end

-- The option's names: "--out" and "-o".
local function names(o)
  local list = { "--" .. o.name }
  if o.short then list[2] = o.short end
  return list
end

-- "flag", "file", "arg" or "values a b c": what an option takes.
local function kind(o)
  if not o.metavar then return "flag" end
  if o.file then return "file" end
  if o.values then return "values " .. table.concat(o.values, " ") end
  return "arg"
end

local function all_names(list, extra)
  local out = {}
  for _, o in ipairs(list) do
    for _, n in ipairs(names(o)) do out[#out + 1] = n end
  end
  for _, n in ipairs(extra or {}) do out[#out + 1] = n end
  return table.concat(out, " ")
end

--- The bash script.
-- @tparam table m the `model`
-- @treturn string
function M.bash(m)
  local out = {}
  local function add(s) out[#out + 1] = s end
  local command_names = {}
  for _, c in ipairs(m.commands) do command_names[#command_names + 1] = c.name end
  add("# bash completion for hscode, made by `hscode completion bash` from hscode's own tables of")
  add("# commands and options. Load it with: eval \"$(hscode completion bash)\"")
  add("")
  add("# _hscode_option COMMAND OPTION: REPLY is flag, file, arg, \"values V...\" or unknown")
  add("_hscode_option() {")
  add("  case \"$1 $2\" in")
  for _, c in ipairs(m.commands) do
    for _, o in ipairs(c.options) do
      local pats = {}
      for _, n in ipairs(names(o)) do pats[#pats + 1] = "'" .. c.name .. " " .. n .. "'" end
      add("    " .. table.concat(pats, "|") .. ") REPLY='" .. kind(o) .. "' ;;")
    end
  end
  for _, o in ipairs(m.global) do
    local pats = {}
    for _, n in ipairs(names(o)) do pats[#pats + 1] = "*' " .. n .. "'" end
    add("    " .. table.concat(pats, "|") .. ") REPLY='" .. kind(o) .. "' ;;")
  end
  add("    *' --version') REPLY=flag ;;")
  add("    *) REPLY=unknown ;;")
  add("  esac")
  add("}")
  add("")
  add("# _hscode_command COMMAND: its options, subcommands, and the subcommands taking files (- itself)")
  add("_hscode_command() {")
  add("  case $1 in")
  for _, c in ipairs(m.commands) do
    local files = {}
    for i, f in ipairs(c.files) do files[i] = f == "" and "-" or f end
    add("    " .. c.name .. ") _hscode_opts='" .. all_names(c.options) .. "' _hscode_subs='"
      .. table.concat(c.subcommands, " ") .. "' _hscode_files='" .. table.concat(files, " ") .. "' ;;")
  end
  add("    help) _hscode_opts='' _hscode_subs='" .. table.concat(command_names, " ") .. "' _hscode_files='' ;;")
  add("    *) _hscode_opts='--version' _hscode_subs='' _hscode_files='' ;;")
  add("  esac")
  add("}")
  add("")
  add("_hscode_reply() { mapfile -t COMPREPLY < <(compgen \"$@\"); }")
  add("")
  add("_hscode() {")
  add("  local cur=${COMP_WORDS[COMP_CWORD]} cmd='' sub='' opt='' w i REPLY")
  add("  local _hscode_opts='' _hscode_subs='' _hscode_files=''")
  add("  local global='" .. all_names(m.global) .. "'")
  add("  COMPREPLY=()")
  add("  for (( i = 1; i < COMP_CWORD; i++ )); do")
  add("    w=${COMP_WORDS[i]}")
  add("    case $w in")
  add("      -*=*) ;;")
  add("      -*) _hscode_option \"$cmd\" \"$w\"")
  add("          case $REPLY in flag|unknown) ;; *)  # its value: the next word, or the one after = (--format=csv)")
  add("            opt=$w i=$((i + 1)); [[ ${COMP_WORDS[i]-} == = ]] && i=$((i + 1)) ;; esac ;;")
  add("      *) if [[ -z $cmd ]]; then cmd=$w; _hscode_command \"$cmd\"")
  add("         elif [[ -z $sub && -n $_hscode_subs ]]; then sub=$w; fi ;;")
  add("    esac")
  add("  done")
  add("  if (( i > COMP_CWORD )); then  # the word is the value of the option before it")
  add("    [[ $cur == = ]] && cur=''")
  add("    _hscode_option \"$cmd\" \"$opt\"")
  add("    case $REPLY in")
  add("      file) _hscode_reply -f -- \"$cur\"; compopt -o filenames 2>/dev/null ;;")
  add("      values\\ *) _hscode_reply -W \"${REPLY#values }\" -- \"$cur\" ;;")
  add("    esac")
  add("    return 0")
  add("  fi")
  add("  _hscode_command \"$cmd\"")
  add("  if [[ $cur == -* ]]; then")
  add("    [[ $cmd == help ]] || _hscode_reply -W \"$global $_hscode_opts\" -- \"$cur\"")
  add("  elif [[ -z $cmd ]]; then")
  add("    _hscode_reply -W '" .. table.concat(command_names, " ") .. " help' -- \"$cur\"")
  add("  elif [[ -n $_hscode_subs && -z $sub ]]; then")
  add("    _hscode_reply -W \"$_hscode_subs\" -- \"$cur\"")
  add("  elif [[ \" $_hscode_files \" == *\" ${sub:--} \"* ]]; then")
  add("    _hscode_reply -f -- \"$cur\"; compopt -o filenames 2>/dev/null")
  add("  fi")
  add("  return 0")
  add("}")
  add("")
  add("complete -F _hscode hscode")
  return table.concat(out, "\n") .. "\n"
end

-- A description for zsh's _arguments and _describe, in single quotes: its
-- first sentence, without brackets, colons or backslashes.
local function zsh_text(s)
  s = (s or ""):gsub("[.;] .*$", ""):gsub("%.$", "")
  if #s > 72 then s = s:sub(1, 72):gsub("%s+%S*$", "") .. " ..." end
  return (s:gsub("%[", "("):gsub("%]", ")"):gsub("\\", ""):gsub(":", " -"):gsub("'", "'\\''"))
end

local function zsh_spec(o)
  local head
  if o.short then
    head = "'(" .. o.short .. " --" .. o.name .. ")'{" .. o.short .. ",--" .. o.name .. "}'"
  else
    head = "'--" .. o.name
  end
  local spec = head .. "[" .. zsh_text(o.description) .. "]"
  if o.metavar then
    local action = o.file and "_files" or o.values and "(" .. table.concat(o.values, " ") .. ")" or " "
    spec = spec .. ":" .. o.metavar .. ":" .. action
  end
  return spec .. "'"
end

--- The zsh script (a `#compdef` function: for a folder of `$fpath`, or `eval`ed after compinit).
-- @tparam table m the `model`
-- @treturn string
function M.zsh(m)
  local out = {}
  local function add(s) out[#out + 1] = s end
  add("#compdef hscode")
  add("# zsh completion for hscode, made by `hscode completion zsh` from hscode's own tables of")
  add("# commands and options.")
  add("")
  add("_hscode() {")
  add("  local curcontext=$curcontext state state_descr line ret=1")
  add("  typeset -A opt_args")
  add("  local -a global commands")
  add("  global=(")
  for _, o in ipairs(m.global) do add("    " .. zsh_spec(o)) end
  add("  )")
  add("  commands=(")
  for _, c in ipairs(m.commands) do add("    '" .. c.name .. ":" .. zsh_text(c.summary) .. "'") end
  add("    'help:show the help of hscode or of a command'")
  add("  )")
  add("  _arguments -C $global '--version[show the versions of hscode and libcurl]' \\")
  add("    '1:command:->command' '*::argument:->argument' && ret=0")
  add("  case $state in")
  add("    command) _describe -t commands 'hscode command' commands && ret=0 ;;")
  add("    argument)")
  add("      curcontext=${curcontext%:*:*}:hscode-$words[1]:")
  add("      case $words[1] in")
  for _, c in ipairs(m.commands) do
    local specs = { "$global" }
    for _, o in ipairs(c.options) do specs[#specs + 1] = zsh_spec(o) end
    if #c.subcommands > 0 then
      specs[#specs + 1] = "'1:" .. c.name .. " command:(" .. table.concat(c.subcommands, " ") .. ")'"
    end
    if #c.files > 0 then specs[#specs + 1] = "'*:file:_files'" end
    add("        " .. c.name .. ")")
    add("          _arguments \\")
    for i, s in ipairs(specs) do add("            " .. s .. (i < #specs and " \\" or " && ret=0 ;;")) end
  end
  add("        help) _describe -t commands 'hscode command' commands && ret=0 ;;")
  add("      esac ;;")
  add("  esac")
  add("  return ret")
  add("}")
  add("")
  add("if [[ $funcstack[1] == _hscode ]]; then")
  add("  _hscode \"$@\"")
  add("else")
  add("  compdef _hscode hscode")
  add("fi")
  return table.concat(out, "\n") .. "\n"
end

local SHELLS = { bash = M.bash, zsh = M.zsh }

--- Runs it: prints the script of the shell `args[1]`.
-- @param sys the CLI's system table
-- @tparam table opts the parsed options
-- @tparam table args the positional arguments
-- @tparam table common the CLI's shared helpers
-- @tparam function describe the command line's tables (`avalara.cli.describe`)
function M.run(sys, opts, args, common, describe) -- luacheck: ignore 212/opts
  if #args ~= 1 or not SHELLS[args[1]] then
    common.usage_error(#args == 0 and "completion needs a shell: bash or zsh"
      or "no completion for '" .. table.concat(args, " ") .. "' (bash or zsh)", "completion")
  end
  sys.stdout:write(SHELLS[args[1]](M.model(describe())))
end

return M
