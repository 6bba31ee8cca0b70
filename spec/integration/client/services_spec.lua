-- Services as fields: client.hs and client.async are the services, the
-- client's flat names are thin aliases of their methods, and the facade,
-- avalara.client and the token/transport modules fit together.
local emu = require "spec.support.emulator"
local H = require "spec.support.client"
local avalara = require "avalara"
local client_mod = require "avalara.client"

describe("client services", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function() e:reset() end)

  it("avalara.new is avalara.client.new; Client, Token and environments are re-exported", function()
    assert.equal(client_mod.new, avalara.new)
    assert.equal(client_mod.Client, avalara.Client)
    assert.equal(require("avalara.token.token").Token, avalara.Token)
    assert.same({ "local", "production", "sandbox" }, (function()
      local names = {}
      for k in pairs(avalara.environments) do names[#names + 1] = k end
      table.sort(names)
      return names
    end)())
  end)

  it("each installed service is a field of every client, aliases included", function()
    local c = H.client(e)
    for _, svc in ipairs(client_mod.services) do
      assert.is_table(c[svc.field], svc.field)
      assert.equal(c, c[svc.field].client)
      for name, method in pairs(svc.aliases or {}) do
        assert.is_function(avalara.Client[name], name)
        assert.is_function(c[svc.field][method], svc.field .. ":" .. method)
      end
    end
    assert.is_table(c.hs)
    assert.is_table(c.async)
    -- a derived client has services of its own
    local d = c:derive { api_base = c.api_base }
    assert.are_not.equal(c.hs, d.hs)
    assert.equal(d, d.hs.client)
  end)

  it("installs a service module: a field on each new client, its flat aliases, callable when it owns its name", function()
    local Widgets = {}
    Widgets.__index = Widgets
    --- a fake service
    function Widgets:widgets(n) return { n = n, client = self.client } end
    function Widgets.count() return 3 end
    local mod = { field = "widgets", aliases = { widgets = "widgets", widget_count = "count" },
      new = function(c) return setmetatable({ client = c }, Widgets) end }
    client_mod.install(mod)
    client_mod.install(mod) -- once only
    local n = 0
    for _, m in ipairs(client_mod.services) do if m == mod then n = n + 1 end end
    assert.equal(1, n)
    local c = H.client(e)
    assert.equal(3, c.widgets:count())
    assert.equal(3, c:widget_count())
    -- client:widgets(5) is the method of the same name, the field is the service
    assert.same({ n = 5, client = c }, c:widgets(5))
    assert.same({ n = 6, client = c }, c.widgets:widgets(6))
    -- a field that would shadow another method raises
    assert.has_error(function() client_mod.install { field = "classify", new = function() return {} end } end)
    assert.has_error(function() client_mod.install { field = 1 } end)
  end)

  it("client.hs:classify, classification and wait are what the flat names do #smoke", function()
    local c = H.client(e)
    local m = assert(c.hs:classify { itemCode = "SV-1", description = "men's cotton t-shirt",
      countryOfDestination = "US" })
    assert.equal("1001-SV-1-US", m.id)
    assert.equal(m.id, assert(c.hs:classification(m.id)).id)
    local done = assert(c.hs:wait(m, { timeout = 10, interval = 0.05 }))
    assert.equal("CLASSIFIED", done.status)
    assert.same(done, assert(c:wait(m.id)))
    assert.equal(21, #assert(c.hs:sections()))
    local n = 0
    for rec, err in c.hs:each_hs_code("US", "XI") do
      assert.is_nil(err)
      assert.is_string(rec.hsCode)
      n = n + 1
    end
    assert.is_true(n > 0)
  end)

  it("a wrong argument raises naming the method, through the service and the alias alike", function()
    local c = H.client(e)
    for _, f in ipairs {
      function() c.hs:classify({ itemCode = "A", description = "x" }, "opts") end,
      function() c:classify({ itemCode = "A", description = "x" }, "opts") end,
    } do
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("client:classify: 'opts' must be a table", 1, true), err)
    end
    local ok, err = pcall(c.hs.wait, c.hs, {}, {})
    assert.is_false(ok)
    assert.truthy(tostring(err):find("client:wait:", 1, true), err)
    ok, err = pcall(c.async.poll, c.async, -1)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("client:poll:", 1, true), err)
  end)

  it("client.async runs a classification to its end by polling", function()
    local c = H.client(e)
    local h = c.async:classify({ itemCode = "SV-2", description = "men's cotton t-shirt" },
      { country = "US", wait = true, interval = 0.05 })
    assert.equal("1001-SV-2-US", h.id)
    assert.equal(1, c.async:pending())
    assert.equal(1, c:pending())
    local got
    local deadline = os.time() + 20
    while c.async:pending() > 0 and os.time() < deadline do
      for _, done in ipairs(c.async:poll(0.05)) do got = done end
    end
    assert.is_table(got)
    assert.is_nil(got.err)
    assert.equal("CLASSIFIED", got.result.status)
    assert.is_nil(c.async:timeout())
    assert.same({}, c.async:sockets())
  end)

  it("never swallows the interpreter's 'interrupted!' in a transport or a hook", function()
    local c = H.client(e, { transport = function() error("interrupted!", 0) end })
    local ok, err = pcall(c.hs.sections, c.hs)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("interrupted!", 1, true))
    c = H.client(e, { on_request = function() error("interrupted!", 0) end })
    ok, err = pcall(c.hs.sections, c.hs)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("interrupted!", 1, true))
    -- any other error of a hook is a warning, and the call goes on
    local warnings = {}
    c = H.client(e, { on_request = function() error("oops") end,
      on_warning = function(m) warnings[#warnings + 1] = m end })
    assert.equal(21, #assert(c.hs:sections()))
    assert.truthy(warnings[1]:find("on_request hook raised", 1, true))
  end)

  it("a service fails at run time with nil and an avalara.error table", function()
    local c = H.client(e)
    local m, err = c.hs:classification("1001-NOPE-US")
    assert.is_nil(m)
    assert.is_true(require("avalara.core").is_error(err))
    assert.is_string(err.kind)
    assert.is_string(err.message)
  end)
end)
