-- Issue 23, item 12: the small things of the CLI's output.
local cjson = require "cjson"
local json = require "avalara.cli.json"
local token = require "avalara.cli.token"

describe("hscode's JSON output (avalara.cli.json)", function()
  it("writes an object's keys in the same order every time: the given ones first, then sorted", function()
    local v = { zeta = 1, alpha = "a", hsCode = "610910", itemCode = "TS-1", nested = { b = 2, a = 1 } }
    local want = '{"itemCode":"TS-1","hsCode":"610910","alpha":"a","nested":{"a":1,"b":2},"zeta":1}'
    for _ = 1, 20 do assert.equal(want, json.encode(v, { "itemCode", "hsCode", "missing" })) end
    assert.equal('{"a":[1,2,{"c":true}],"b":null}', json.encode({ b = cjson.null, a = { 1, 2, { c = true } } }))
  end)

  it("does not escape / (and keeps a backslash before one)", function()
    local s = json.encode({ url = "https://example.com/a/b", odd = "a\\/b", group = "Clothing / Men" })
    assert.equal('{"group":"Clothing / Men","odd":"a\\\\/b","url":"https://example.com/a/b"}', s)
    assert.same({ url = "https://example.com/a/b", odd = "a\\/b", group = "Clothing / Men" }, cjson.decode(s))
  end)
end)

describe("hscode token's expiry line", function()
  it("shows a 2012 token (expiring in 9999) as not expiring, not as 251605772704 s", function()
    assert.equal("9999-12-31T23:59:59Z (does not expire)", token.expiry("9999-12-31T23:59:59Z", 251605772704))
    assert.equal("2026-12-06T10:00:00Z (in 3599 s)", token.expiry("2026-12-06T10:00:00Z", 3599))
    assert.equal("2026-12-06T15:00:00Z (in 5 h 0 min)", token.expiry("2026-12-06T15:00:00Z", 18000))
    assert.equal("2026-12-20T10:00:00Z (in 14 days)", token.expiry("2026-12-20T10:00:00Z", 14 * 86400))
    assert.equal("2026-12-06T09:00:00Z (expired 5 s ago)", token.expiry("2026-12-06T09:00:00Z", -5))
    assert.equal("no expiry", token.expiry(nil, nil))
  end)
end)
