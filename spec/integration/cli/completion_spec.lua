-- `hscode completion bash|zsh` (issue 23, conveniences): the scripts are
-- made from the command line's own tables, so every command and option of
-- every command is in both; the bash script, loaded in a real bash with
-- COMP_WORDS and COMP_CWORD set, completes what a user expects; the zsh
-- script is valid zsh.
local cli = require "avalara.cli"
local completion = require "avalara.cli.completion"
local H = require "spec.support.cli"

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

describe("hscode completion", function()
  local dir, bash, zsh

  setup(function()
    dir = H.tmpdir()
    local r = H.run({ "completion", "bash" }, nil, dir)
    assert.equal(0, r.code, r.stderr)
    bash = r.stdout
    r = H.run({ "completion", "zsh" }, nil, dir)
    assert.equal(0, r.code, r.stderr)
    zsh = r.stdout
    H.write(dir .. "/comp.bash", bash)
    H.write(dir .. "/_hscode", zsh)
  end)
  teardown(function() H.rmdir(dir) end)

  local model = completion.model(cli.describe())

  -- The bash completion of each case (the words, the last one being
  -- completed), sorted, from one bash run in a folder with a few files.
  local function complete(cases)
    local work = dir .. "/work"
    os.execute("mkdir -p " .. quote(work .. "/sub") .. " && touch " .. quote(work .. "/products.csv") .. " "
      .. quote(work .. "/prices.json") .. " " .. quote(work .. "/key file"))
    local script = { "set -u", "source " .. quote(dir .. "/comp.bash"), "cd " .. quote(work),
      "t() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); _hscode;"
        .. " printf '%s\\n' \"${COMPREPLY[@]}\" | LC_ALL=C sort | tr '\\n' ' '; echo; }" }
    for _, c in ipairs(cases) do
      local words = { "hscode" }
      for w in (c[1] .. " "):gmatch("(.-) ") do words[#words + 1] = quote(w) end
      script[#script + 1] = "t " .. table.concat(words, " ")
    end
    H.write(dir .. "/cases.bash", table.concat(script, "\n") .. "\n")
    local p = assert(io.popen("bash --norc --noprofile " .. quote(dir .. "/cases.bash") .. " 2>&1"))
    local got = {}
    for line in p:lines() do got[#got + 1] = line:gsub("%s+$", "") end
    p:close()
    return got
  end

  it("bash: commands, subcommands, options, their values and file names, in a real bash", function()
    local commands = {}
    for _, c in ipairs(model.commands) do commands[#commands + 1] = c.name end
    commands[#commands + 1] = "help"
    table.sort(commands)
    -- {the command line, the last word being completed; what bash offers}
    local cases = {
      { "", table.concat(commands, " ") },
      { "b", "batch" },
      { "c", "classify completion connect connections" },
      { "--company 1001 cl", "classify" },
      { "-v --env local cl", "classify" },
      { "--env ", "local production sandbox" },
      { "--env s", "sandbox" },
      { "classify --env s", "sandbox" },
      { "--flow ", "2012 identity" },
      { "--vers", "--version" },
      { "batch --fo", "--format" },
      { "batch --format ", "csv json jsonl table" },
      { "batch --format j", "json jsonl" },
      { "batch --format =", "csv json jsonl table" },
      { "batch --format = j", "json jsonl" },
      { "items --out = x cl", "classify" },
      { "items --format ", "csv json table" },
      { "batch --ou", "--out" },
      { "batch --out pr", "prices.json products.csv" },
      { "batch -o k", "key file" },
      { "batch --restart pro", "products.csv" },
      { "batch --country US pro", "products.csv" },
      { "batch --cafile s", "sub" },
      { "classify --country ", "" },
      { "classify --summary --json st", "" },
      { "classify st", "" },
      { "classify --ti", "--timeout" },
      { "items ", "classify list sla verify" },
      { "items --countries US,GB cl", "classify" },
      { "items classify pro", "products.csv" },
      { "items list pro", "" },
      { "help ba", "batch" },
      { "completion ", "bash zsh" },
      { "token --j", "--json" },
      { "disconnect --f", "--flow --force" },
    }
    local got = complete(cases)
    local wrong = {}
    for i, c in ipairs(cases) do
      if got[i] ~= c[2] then wrong[#wrong + 1] = ("hscode %s<TAB>: %q, expected %q"):format(c[1], got[i], c[2]) end
    end
    assert.same({}, wrong)
    assert.equal(#cases, #got, table.concat(got, "\n"))
  end)

  it("bash: every long option of every command, and every global one, is offered after the command", function()
    local cases = {}
    for _, c in ipairs(model.commands) do
      local all = {}
      for _, o in ipairs(model.global) do all[#all + 1] = "--" .. o.name end
      for _, o in ipairs(c.options) do all[#all + 1] = "--" .. o.name end
      table.sort(all)
      cases[#cases + 1] = { c.name .. " --", table.concat(all, " ") }
    end
    local got = complete(cases)
    for i, c in ipairs(cases) do assert.equal(c[2], got[i], "hscode " .. c[1] .. "<TAB>") end
  end)

  it("every command and every option of every command is in both scripts (walking the parser's tables)", function()
    local function has(script, text, what)
      assert.truthy(script:find(text, 1, true), what .. ": no " .. text)
    end
    -- the tables themselves, not the model: nothing the parser declares is left out
    local d = cli.describe()
    local checked = 0
    for _, name in ipairs(d.order) do
      has(bash, "    " .. name .. ") _hscode_opts=", "bash")
      has(zsh, "'" .. name .. ":", "zsh commands")
      has(zsh, "\n        " .. name .. ")\n", "zsh")
      local declared = d.commands[name].options
      local list = {}
      if declared[1] then
        for _, o in ipairs(declared) do list[#list + 1] = o[1] end
      else
        for option in pairs(declared) do list[#list + 1] = option end
      end
      local branch = zsh:match("\n        " .. name .. "%)\n(.-);;")
      for _, option in ipairs(list) do
        has(bash, "'" .. name .. " --" .. option .. "'", "bash")
        assert.truthy(bash:match("\n    " .. name .. "%) _hscode_opts='[^']-%-%-" .. option:gsub("%-", "%%-") .. "[ ']"),
          "bash: --" .. option .. " not in the options of " .. name)
        assert.truthy(branch:find("--" .. option .. "[", 1, true) or branch:find(",--" .. option .. "}", 1, true),
          "zsh: --" .. option .. " not in the branch of " .. name)
        checked = checked + 1
      end
    end
    for _, o in ipairs(d.global_options) do
      has(bash, "*' --" .. o[1] .. "'", "bash")
      assert.truthy(zsh:find("'--" .. o[1] .. "[", 1, true) or zsh:find(",--" .. o[1] .. "}", 1, true),
        "zsh: no global --" .. o[1])
    end
    assert.is_true(checked > 30)
  end)

  -- The zsh completion of each case, deduplicated and sorted, from zsh's own completion system
  -- (compinit) with the script as _hscode, in a pseudo-terminal (spec/support/zsh_complete.zsh).
  local function zsh_complete(cases)
    local work = dir .. "/work"
    os.execute("mkdir -p " .. quote(work .. "/sub") .. " && touch " .. quote(work .. "/products.csv") .. " "
      .. quote(work .. "/prices.json"))
    local words = {}
    for i, c in ipairs(cases) do words[i] = quote("hscode " .. c[1]) end
    local script = H.ROOT .. "/spec/support/zsh_complete.zsh"
    local p = assert(io.popen("script=$(realpath " .. quote(script) .. ") && cd " .. quote(work)
      .. " && timeout 60 zsh -f \"$script\" " .. quote(dir) .. " " .. table.concat(words, " ") .. " 2>&1"))
    local got = {}
    for line in p:lines() do
      local set, list = {}, {}
      for w in (line:match("|(.*)$") or line):gmatch("%S+") do
        if not set[w] then set[w] = true list[#list + 1] = w end
      end
      table.sort(list)
      got[#got + 1] = table.concat(list, " ")
    end
    p:close()
    return got
  end

  it("zsh: commands, subcommands, options, their values and file names, in zsh's completion system", function()
    local commands = {}
    for _, c in ipairs(model.commands) do commands[#commands + 1] = c.name end
    commands[#commands + 1] = "help"
    table.sort(commands)
    local cases = {
      { "", table.concat(commands, " ") },
      { "ite", "items" },
      { "--env ", "local production sandbox" },
      { "--company 1001 cl", "classify" },
      { "batch --format ", "csv json jsonl table" },
      { "items --format ", "csv json table" },
      { "items ", "classify list sla verify" },
      { "completion ", "bash zsh" },
      { "batch --out pr", "prices.json products.csv" },
      { "batch pro", "products.csv" },
      { "classify --country ", "" },
      { "batch --fo", "--format" },
      { "help ba", "batch" },
    }
    -- every long option, for the commands with a list and a map of options (bash: all commands)
    for _, c in ipairs(model.commands) do
      if c.name == "batch" or c.name == "items" then
        local all = {}
        for _, o in ipairs(model.global) do all[#all + 1] = "--" .. o.name end
        for _, o in ipairs(c.options) do all[#all + 1] = "--" .. o.name end
        table.sort(all)
        cases[#cases + 1] = { c.name .. " --", table.concat(all, " ") }
      end
    end
    local got = zsh_complete(cases)
    local wrong = {}
    for i, c in ipairs(cases) do
      if got[i] ~= c[2] then wrong[#wrong + 1] = ("hscode %s<TAB>: %q, expected %q"):format(c[1], got[i], c[2]) end
    end
    assert.same({}, wrong)
    assert.equal(#cases, #got, table.concat(got, "\n"))
  end)

  it("zsh: the script is valid zsh (zsh -n), a #compdef function that registers itself when eval'd", function()
    local p = assert(io.popen("zsh -n " .. quote(dir .. "/_hscode") .. " 2>&1; echo rc=$?"))
    local out = p:read("*a")
    p:close()
    assert.equal("rc=0\n", out)
    assert.truthy(zsh:find("^#compdef hscode\n"))
    assert.truthy(zsh:find("compdef _hscode hscode", 1, true))
    -- the values and the file names, as in bash
    assert.truthy(zsh:find("'--env[", 1, true) and zsh:find(":NAME:(production sandbox local)'", 1, true))
    assert.truthy(zsh:find(":FORMAT:(csv json jsonl table)'", 1, true))
    assert.truthy(zsh:match("'%(%-o %-%-out%)'{%-o,%-%-out}'%[[^\n]*%]:FILE:_files'"))
    assert.truthy(zsh:find("'1:items command:(classify list sla verify)'", 1, true))
  end)

  it("bash -n: the bash script is valid, and the same each time", function()
    local p = assert(io.popen("bash -n " .. quote(dir .. "/comp.bash") .. " 2>&1; echo rc=$?"))
    local out = p:read("*a")
    p:close()
    assert.equal("rc=0\n", out)
    local r = H.run({ "completion", "bash" }, nil, dir)
    assert.equal(bash, r.stdout)
  end)

  it("a shell it does not know, or none, is a usage error (exit 2)", function()
    local r = H.run({ "completion", "fish" }, nil, dir)
    assert.equal(2, r.code)
    assert.equal("hscode: no completion for 'fish' (bash or zsh)\nTry 'hscode completion --help'.\n", r.stderr)
    r = H.run({ "completion" }, nil, dir)
    assert.equal(2, r.code)
    assert.matches("^hscode: completion needs a shell: bash or zsh\n", r.stderr)
    assert.equal("", r.stdout)
    r = H.run({ "completion", "--help" }, nil, dir)
    assert.equal(0, r.code)
    assert.matches("^Usage: hscode completion bash\n       hscode completion zsh\n", r.stdout)
    assert.matches("\n  completion +print the bash or zsh completion script\n", H.run({ "--help" }, nil, dir).stdout)
  end)
end)
