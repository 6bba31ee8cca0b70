-- The stores' one contract (get with versions, set, cas, delete, lock with
-- ttl), run against any store: `contract(name, make)` inside a spec file
-- (spec/integration/partner/store_spec.lua: memory, file and shared_dict on a stand-in dict;
-- spec/integration/fleet/store_spec.lua: Redis).
-- `b` is busted's functions of the calling spec file, {describe, it, before_each}
-- (they live in its environment, not in the globals of this module).
local assert = require "luassert"

local function pack(...) return { n = select("#", ...), ... } end

return function(name, make, b)
  local describe, it, before_each = b.describe, b.it, b.before_each
  describe(name .. " store", function()
    local s
    before_each(function() s = make() end)

    it("gets what was set, with a version that changes on every write", function()
      assert.is_nil(s:get("a"))
      assert.is_true((s:set("a", { x = 1, y = "it's", nested = { z = true } })))
      local v, ver = s:get("a")
      assert.same({ x = 1, y = "it's", nested = { z = true } }, v)
      assert.is_not_nil(ver)
      s:set("a", { x = 2 })
      local v2, ver2 = s:get("a")
      assert.equal(2, v2.x)
      assert.are_not.equal(ver, ver2)
    end)

    it("copies values in and out", function()
      local value = { x = 1 }
      s:set("a", value)
      value.x = 2
      local got = s:get("a")
      got.x = 3
      assert.equal(1, s:get("a").x)
    end)

    it("cas writes only over the version read, creates only when absent, deletes with nil", function()
      local ok, v1 = s:cas("a", nil, { n = 1 })
      assert.is_true(ok)
      local again, current, have = s:cas("a", nil, { n = 9 })
      assert.is_false(again)
      assert.same({ n = 1 }, current)
      assert.equal(v1, have)
      local ok2, v2 = s:cas("a", v1, { n = 2 })
      assert.is_true(ok2)
      assert.is_false((s:cas("a", v1, { n = 3 })))  -- a stale version
      assert.equal(2, s:get("a").n)
      assert.is_false((s:cas("a", v1, nil)))
      assert.is_true((s:cas("a", v2, nil)))
      assert.is_nil(s:get("a"))
    end)

    it("cas has one shape: true, version | false, current, current version (nil, nil when absent)", function()
      local created = pack(s:cas("b", nil, { n = 1 }))
      assert.is_true(created[1])
      assert.is_not_nil(created[2])
      assert.same({ n = 3, false, { n = 1 }, created[2] }, pack(s:cas("b", nil, { n = 9 })))
      assert.is_true((s:cas("b", created[2], nil)))
      assert.same({ n = 3, false }, pack(s:cas("b", created[2], { n = 4 }))) -- absent now: false, nil, nil
    end)

    it("forgets values past their ttl", function()
      s:set("gone", { x = 1 }, -1)
      assert.is_nil(s:get("gone"))
      assert.is_true((s:cas("gone", nil, { x = 2 }))) -- an expired value counts as absent
      s:set("kept", { x = 1 }, 100)
      assert.equal(1, s:get("kept").x)
      assert.is_true((s:delete("kept")))
      assert.is_nil(s:get("kept"))
    end)

    it("locks without blocking; a lock past its ttl lapses", function()
      local unlock = assert(s:lock("k"))
      assert.is_nil(s:lock("k"))
      assert.is_function(s:lock("other"))
      unlock()
      local again = assert(s:lock("k"))
      again()
      assert(s:lock("short", -1))
      assert.is_function(s:lock("short")) -- the first one lapsed
    end)
  end)
end
