-- What a client keeps from one call to the next to make a call cheaper
-- (issue 27, the leaner classic binding): each cache must follow what it
-- caches. The instructions saved are measured by bench/profile.lua.
local paths = require "avalara.paths"
local emu = require "spec.support.emulator"
local H = require "spec.support.client"

describe("per-call caches of the client", function()
  local e
  setup(function() e = emu.start() end)
  teardown(function() e:stop() end)
  before_each(function() e:reset() end)

  it("classification's path memo follows the company and the template", function()
    local urls = {}
    local c = H.client(e, { on_request = function(info) urls[#urls + 1] = info.url end })
    local m = assert(c:classify { itemCode = "a/b c", description = "men's cotton t-shirt", countryOfDestination = "US" })
    assert(c:classification(m.id))
    assert(c:classification(m.id))
    assert.matches("/companies/1001/classifications/hs/1001%-a%%2Fb%%20c%-US$", urls[#urls])
    assert.equal(urls[#urls - 1], urls[#urls])
    -- another company: another path (not this account's: refused)
    c.company_id = 1002
    local _, err = c:classification(m.id)
    assert.matches("/companies/1002/", urls[#urls])
    assert.equal("permission", err.kind)
    c.company_id = 1001
    assert(c:classification(m.id))
    assert.matches("/companies/1001/", urls[#urls])
    -- a template changed at run time is followed
    local tpl = paths.templates.classification_get
    paths.templates.classification_get = tpl .. "/"
    finally(function() paths.templates.classification_get = tpl end)
    c:classification(m.id)
    assert.matches("%-US/$", urls[#urls])
  end)

  it("a held token is used until its expiry less the leeway, then renewed", function()
    local clock = require "avalara.clock"
    finally(function() clock.reset() end)
    local c = H.client(e, { leeway = 60 })
    local t1 = assert(c:token())
    local n = H.route(e, "connect_token")
    for _ = 1, 3 do assert(c:classification("1001-TS-1-US") or true) end
    assert.equal(n, H.route(e, "connect_token"))
    assert.equal(t1:access_token(), assert(c:token()):access_token())
    clock.advance(t1:expires_at() - clock.now() - 61)
    assert.equal(t1:access_token(), assert(c:token()):access_token())
    assert.equal(n, H.route(e, "connect_token"))
    clock.advance(2)
    assert.are_not.equal(t1:access_token(), assert(c:token()):access_token())
    assert.equal(n + 1, H.route(e, "connect_token"))
  end)
end)
