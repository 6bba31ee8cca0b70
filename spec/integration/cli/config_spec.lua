-- The config file of hscode (issue 23, conveniences): profiles of global
-- options in $XDG_CONFIG_HOME/hscode/config, `--profile NAME` and
-- HSCODE_PROFILE; precedence flag > environment variable > profile > default,
-- option by option; a file holding a secret must be private; bad files are
-- refused with their file and line, exit 2.
local cjson = require "cjson"
local H = require "spec.support.cli"
local config = require "avalara.cli.config"
local common = require "avalara.cli.common"

describe("hscode config file", function()
  local w = H.world()

  local function config_dir() return w.cache .. "/config/hscode" end
  local function config_path() return config_dir() .. "/config" end

  -- Writes the config file (mode 600 unless `mode`, its folder 700).
  local function write_config(text, mode)
    assert(os.execute("mkdir -p -m 700 '" .. config_dir() .. "'"))
    H.write(config_path(), text)
    assert(os.execute("chmod " .. (mode or "600") .. " '" .. config_path() .. "'"))
    return config_path()
  end

  -- The environment of w.env without `drop` and with `add`.
  local function env_with(add, drop)
    local env = {}
    for k, v in pairs(w.env) do env[k] = v end
    for _, k in ipairs(drop or {}) do env[k] = nil end
    for k, v in pairs(add or {}) do env[k] = v end
    return env
  end

  local function hscode(args, env)
    local r = H.run(args, env or w.env, w.cache)
    assert.falsy(r.stderr:find("traceback", 1, true), r.stderr)
    return r
  end

  -- In-process: the options and variables a profile gives, for every key
  -- (`apply` then the getenv that consults the profile after the environment).
  describe("every key", function()
    local function resolve(text, env, opts)
      write_config(text)
      env = env or {}
      env.XDG_CONFIG_HOME = w.cache .. "/config"
      local sys = { getenv = function(name) return env[name] end, stderr = io.stderr }
      opts = opts or {}
      local ok, overlay = pcall(config.apply, sys, opts, common)
      if not ok then return nil, overlay end
      return opts, config.getenv(sys.getenv, overlay)
    end

    local function sample(key, kind)
      if kind == "flag" then return "true", true end
      if kind == "number" then return "7", "7" end
      if type(kind) == "table" then return kind[2], kind[2] end
      if kind == "secret_file" then return "secret.txt", "S3CRET-" .. key end
      return "p-" .. key, "p-" .. key
    end

    it("is set by the profile, unless the environment or the option gives it", function()
      local n = 0
      for key, spec in pairs(config.KEYS) do
        local var, kind = spec[1], spec[2]
        local name = key:gsub("_", "-")
        local text, want = sample(key, kind)
        if kind == "secret_file" then
          write_config("")
          H.write(config_dir() .. "/secret.txt", want .. "\n")
          assert(os.execute("chmod 600 '" .. config_dir() .. "/secret.txt'"))
          var = config.KEYS[key:gsub("_file$", "")][1]
        end
        local file = "[profile p]\n" .. name .. " = " .. text .. "\n"
        -- the profile alone
        local _, opts, getenv
        opts, getenv = resolve(file, {}, { profile = "p" })
        if not opts then error(name .. ": " .. tostring(getenv.message)) end
        if var then assert.equal(want, getenv(var), name) else assert.equal(want, opts[key], name) end
        -- the environment wins over the profile (an empty variable does not)
        if var then
          _, getenv = resolve(file, { [var] = "from-env" }, { profile = "p" })
          assert.equal("from-env", getenv(var), name)
          _, getenv = resolve(file, { [var] = "" }, { profile = "p" })
          assert.equal(want, getenv(var), name)
        end
        -- the option wins over the profile (and the variable: `opts.x or getenv(VAR)` in every command)
        local flag_key = kind == "secret_file" and key:gsub("_file$", "") or key
        opts, getenv = resolve(file, {}, { profile = "p", [flag_key] = "from-flag" })
        assert.equal("from-flag", opts[flag_key], name)
        if kind == "secret_file" then assert.is_nil(getenv(var), name) end -- the file is not even read
        -- default: no profile named, no [default] section
        opts, getenv = resolve(file, {}, {})
        if var then assert.is_nil(getenv(var), name) else assert.is_nil(opts[key], name) end
        n = n + 1
      end
      assert.equal(17, n)
    end)

    it("HSCODE_PROFILE names the profile; --profile wins over it; [default] without either", function()
      local file = "[default]\naccount = d\n[profile a]\naccount = a\n[b]\naccount = b\n"
      local _, getenv = resolve(file, {}, {})
      assert.equal("d", getenv("AVALARA_ACCOUNT_ID"))
      _, getenv = resolve(file, { HSCODE_PROFILE = "a" }, {})
      assert.equal("a", getenv("AVALARA_ACCOUNT_ID"))
      _, getenv = resolve(file, { HSCODE_PROFILE = "a" }, { profile = "b" })
      assert.equal("b", getenv("AVALARA_ACCOUNT_ID"))
    end)
  end)

  describe("through hscode", function()
    local function token_json(r)
      assert.equal(0, r.code, r.stderr)
      return cjson.decode(r.stdout)
    end

    it("env: flag > AVALARA_ENVIRONMENT > profile > production", function()
      write_config("[profile l]\nenv = local\n[profile s]\nenv = sandbox\n")
      local no_env = env_with(nil, { "AVALARA_ENVIRONMENT" })
      assert.equal("local", token_json(hscode({ "--profile", "l", "token", "--json" }, no_env)).environment)
      -- the variable wins: sandbox without credentials stops before any request
      local r = hscode({ "token", "--profile", "l" }, env_with({ AVALARA_ENVIRONMENT = "sandbox" }))
      assert.equal(3, r.code, r.stderr)
      assert.matches("no account ID", r.stderr)
      -- the option wins over both
      assert.equal("local", token_json(hscode({ "token", "--json", "--profile", "s", "--env", "local" },
        env_with({ AVALARA_ENVIRONMENT = "sandbox" }))).environment)
      -- no profile: production (no credentials: exit 3)
      r = hscode({ "token" }, no_env)
      assert.equal(3, r.code, r.stderr)
    end)

    it("account and license key: flag > variables > profile (a key file relative to the config)", function()
      write_config("[profile two]\naccount = 2000000002\nlicense-key = " .. H.SBX_KEY .. "\n"
        .. "[profile file]\naccount = 2000000002\nlicense-key-file = two.key\n")
      H.write(config_dir() .. "/two.key", H.SBX_KEY .. "\n")
      assert(os.execute("chmod 600 '" .. config_dir() .. "/two.key'"))
      assert.equal("2000000002", tostring(token_json(hscode { "token", "--json", "--profile", "two" }).account_id))
      assert.equal("2000000002", tostring(token_json(hscode { "token", "--json", "--profile", "file" }).account_id))
      local one = env_with({ AVALARA_ACCOUNT_ID = "2000000001", AVALARA_LICENSE_KEY = H.KEY })
      assert.equal("2000000001", tostring(token_json(hscode({ "--profile", "two", "token", "--json" }, one)).account_id))
      assert.equal("2000000001", tostring(token_json(hscode({ "--profile", "file", "token", "--json" }, one)).account_id))
      local key = H.write(w.dir .. "/flag.key", H.SBX_KEY)
      assert(os.execute("chmod 600 '" .. key .. "'"))
      local r = hscode({ "--profile", "two", "token", "--json", "--account", "2000000002", "--license-key-file", key }, one)
      assert.equal("2000000002", tostring(token_json(r).account_id))
      assert.equal("", r.stderr)
    end)

    it("company: flag > AVALARA_COMPANY_ID > profile", function()
      write_config("[profile c]\naccount = 2000000002\nlicense-key = " .. H.SBX_KEY .. "\ncompany = 1002\n")
      local function company(r)
        assert.equal(0, r.code, r.stderr)
        return cjson.decode(r.stdout).item.companyId
      end
      local args = { "classify", "steel nail", "--country", "US", "--json", "--profile", "c" }
      assert.equal(1002, company(hscode(args)))
      local r = hscode(args, env_with({ AVALARA_COMPANY_ID = "9999" }))
      assert.are_not.equal(0, r.code)
      args[#args + 1] = "--company"
      args[#args + 1] = "1002"
      assert.equal(1002, company(hscode(args, env_with({ AVALARA_COMPANY_ID = "9999" }))))
    end)

    it("emulator-url and verbose: flag > AVALARA_EMULATOR_URL > profile", function()
      write_config("[default]\nemulator-url = http://127.0.0.1:1\nverbose = true\n")
      local no_url = env_with(nil, { "AVALARA_EMULATOR_URL" })
      local r = hscode({ "token" }, no_url)
      assert.equal(1, r.code, r.stderr)
      assert.matches("127%.0%.0%.1:1", r.stderr)
      r = hscode({ "token" })
      assert.equal(0, r.code, r.stderr)
      assert.matches("hscode: POST " .. w.e.http_url:gsub("%p", "%%%0"), r.stderr) -- verbose from the profile
      r = hscode({ "token", "--emulator-url", "http://127.0.0.1:1" })
      assert.equal(1, r.code, r.stderr)
    end)

    it("connection and flow: flag > variable > profile", function()
      write_config("[default]\nconnection = FROM-PROFILE\nflow = identity\n")
      local r = hscode { "token" }
      assert.equal(3, r.code, r.stderr)
      assert.matches("FROM%-PROFILE", r.stderr)
      r = hscode { "token", "--connection", "FROM-FLAG" }
      assert.matches("FROM%-FLAG", r.stderr)
      r = hscode({ "token" }, env_with({ AVALARA_FLOW = "sideways" }))
      assert.equal(3, r.code, r.stderr)
      assert.matches("unknown flow 'sideways'", r.stderr)
      r = hscode({ "token", "--flow", "upwards" }, env_with({ AVALARA_FLOW = "sideways" }))
      assert.equal(2, r.code, r.stderr)
      assert.matches("unknown flow 'upwards'", r.stderr)
    end)

    it("log-format, quiet from the profile", function()
      write_config("[default]\nlog-format = json\nquiet = yes\n")
      local r = hscode { "get", "1001-NOPE-US" }
      assert.equal(1, r.code, r.stderr)
      assert.equal("error", cjson.decode(r.stderr).level)
    end)

    it("refuses a file holding a secret that others could read or replace, naming it", function()
      local path = write_config("[default]\naccount = 2000000001\nlicense-key = " .. H.KEY .. "\n", "644")
      local r = hscode { "token" }
      assert.equal(3, r.code, r.stderr)
      assert.equal("hscode: refusing the config file " .. path .. ", which holds a secret: " .. path
        .. " is readable by its group or others (mode 0644): chmod 600 " .. path .. "\n", r.stderr)
      -- a folder others can write
      assert(os.execute("chmod 600 '" .. path .. "' && chmod 777 '" .. config_dir() .. "'"))
      r = hscode { "token" }
      assert.equal(3, r.code, r.stderr)
      assert.matches("writable by its group or others", r.stderr)
      -- a folder others can list and enter (mkdir's 0755): a secret's folder is the user's only
      assert(os.execute("chmod 755 '" .. config_dir() .. "'"))
      r = hscode { "token" }
      assert.equal(3, r.code, r.stderr)
      assert.matches("readable by its group or others %(mode 0755%): chmod 700", r.stderr)
      assert(os.execute("chmod 700 '" .. config_dir() .. "'"))
      assert.equal(0, hscode({ "token" }).code)
      -- a symbolic link (planted by someone else, or not)
      local real = H.write(w.dir .. "/real-config", "[default]\nclient-secret = x\n")
      assert(os.execute("chmod 600 '" .. real .. "' && rm '" .. path .. "' && ln -s '" .. real .. "' '" .. path .. "'"))
      r = hscode { "token" }
      assert.equal(3, r.code, r.stderr)
      assert.matches(path:gsub("%p", "%%%0") .. " is a symbolic link", r.stderr)
      -- without a secret: readable by others, a link, are fine; writable by others is not
      write_config("[default]\naccount = 2000000001\n", "644")
      r = hscode { "token" }
      assert.equal(3, r.code) -- no license key: the profile's account was used
      assert.matches("no license key", r.stderr)
      real = H.write(w.dir .. "/plain-config", "[default]\nemulator-url = http://127.0.0.1:1\n")
      assert(os.execute("chmod 664 '" .. real .. "' && rm '" .. path .. "' && ln -s '" .. real .. "' '" .. path .. "'"))
      r = hscode { "token" }
      assert.equal(3, r.code, r.stderr)
      assert.equal("hscode: refusing the config file " .. path .. ": others can change it (mode 0664); it says where "
        .. "your credentials are sent: chmod go-w it, or use a file of your own\n", r.stderr)
    end)

    it("a bad file or profile: the file and line, exit 2, before any request", function()
      local path = write_config("# mine\n[profile a]\nenv = local\nbogus = 1\n")
      local r = hscode { "token" }
      assert.equal(2, r.code, r.stderr)
      assert.equal("hscode: " .. path .. ":4: unknown key 'bogus' (known: account, cafile, client-id, client-secret, "
        .. "client-secret-file, company, connection, emulator-url, env, flow, license-key, license-key-file, "
        .. "log-format, no-progress, quiet, timeout, verbose)\n", r.stderr)
      local bad = {
        { "[profile a]\nenv local\n", ":2: malformed line" },
        { "[profile a\n", ":1: malformed section" },
        { "account = 1\n", ":1: 'account' comes before any %[profile NAME%] section" },
        { "[a]\nenv = moon\n", ":2: env must be production, sandbox or local %(got 'moon'%)" },
        { "[a]\ntimeout = 0\n", ":2: timeout must be a positive number" },
        { "[a]\nquiet = maybe\n", ":2: quiet must be true or false" },
        { "[a]\n[profile a]\n", ":2: profile 'a' is defined twice %(first at line 1%)" },
        { "[a]\naccount = 1\naccount = 2\n", ":3: 'account' is set twice" },
      }
      for _, case in ipairs(bad) do -- in-process: the same parse
        local ok, err = config.parse(case[1], path)
        assert.is_nil(ok, case[1])
        assert.matches("^" .. path:gsub("%p", "%%%0") .. case[2], err)
      end
      write_config("[profile a]\n")
      r = hscode { "token", "--profile", "b" }
      assert.equal(2, r.code, r.stderr)
      assert.matches("unknown profile 'b' %(%-%-profile%) in " .. path:gsub("%p", "%%%0") .. " %(profiles: a%)", r.stderr)
      r = hscode({ "token" }, env_with({ HSCODE_PROFILE = "c" }))
      assert.matches("unknown profile 'c' %(HSCODE_PROFILE%)", r.stderr)
      os.remove(path)
      r = hscode { "token", "--profile", "b" }
      assert.equal(2, r.code, r.stderr)
      assert.matches("unknown profile 'b'.*No such file", r.stderr)
      -- no file and no profile named: nothing to apply
      assert.equal(0, hscode({ "token" }).code)
    end)
  end)
end)
