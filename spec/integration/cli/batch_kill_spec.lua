-- hscode batch killed (SIGKILL) with a full round of creates in flight, then
-- run again with the same command: each item code and country is created
-- once, with one default country and with two (--country US,GB). A kill
-- with the first round out was paid twice when the rerun was refused ("the
-- journal belongs to another batch": its --country list recorded as a Lua
-- table's address) and had to --restart: 3,016 creates for 3,000 items.
local H = require "spec.support.cli"

local WORDS = require("spec.support.client").WORDS

-- A CSV catalog of n rows without a country column (--country gives it).
local function catalog(path, n)
  local lines = { "itemCode,description" }
  for i = 1, n do lines[#lines + 1] = "SKU-" .. i .. "," .. WORDS[(i - 1) % #WORDS + 1] end
  return H.write(path, table.concat(lines, "\n") .. "\n")
end

describe("hscode batch killed with creates in flight", function()
  local w = H.world()

  local function creates() return H.route(w.e, "classification_create") end

  for _, case in ipairs { { countries = "US", n = 60 }, { countries = "US,GB", n = 40 } } do
    it("--country " .. case.countries .. ": the rerun of the same command creates each item and country once",
      function()
        local e, dir = w.e, H.tmpdir()
        -- every request answers after 1 s: the creates counted are the ones in flight (a slow
        -- client, under ASan on a loaded machine, still kills before the first answer)
        e:configure { latency_ms = 1000 }
        local input, out = catalog(dir .. "/in.csv", case.n), dir .. "/out.csv"
        local args = { "batch", input, "--country", case.countries, "--out", out } -- concurrency 16
        local job = H.spawn(args, w.env, w.cache)
        H.until_true(function() return creates() >= 16 end)
        H.signal(job, "KILL")
        assert.equal(137, H.finish(job).code)
        assert.equal(16, creates(), "a full round in flight, none answered")
        e:configure { latency_ms = 0 } -- for the rerun's requests (the 16 go on at the service)
        -- at once: the lookups of the creates reserved and not sent (404) wait for the killed run's --timeout
        args[#args + 1] = "--timeout"
        args[#args + 1] = "2"
        local r = H.run(args, w.env, w.cache)
        assert.equal(0, r.code, r.stderr)
        local pairs_n = case.n * (select(2, case.countries:gsub(",", ",")) + 1) -- items x countries
        assert.equal(pairs_n, creates())
        local got = H.read_csv(out)
        assert.equal(pairs_n, #got)
        local seen = {}
        for _, row in ipairs(got) do
          assert.equal("CLASSIFIED", row.status, row.id)
          assert.is_nil(seen[row.id], row.id)
          seen[row.id] = true
        end
        H.rmdir(dir)
      end)
  end

  it("run again at once while the service is still on the killed run's creates: they are not sent again", function()
    local e, dir = w.e, H.tmpdir()
    -- the first round of creates takes 2 s at the service; the rerun's lookups come before they are done
    e:fault("classification_create", "stall", 16, { stall_seconds = 2 })
    local input, out = catalog(dir .. "/in.csv", 60), dir .. "/out.csv"
    local args = { "batch", input, "--country", "US", "--out", out, "--timeout", "3" }
    local job = H.spawn(args, w.env, w.cache)
    H.until_true(function() return creates() >= 16 end)
    H.signal(job, "KILL")
    assert.equal(137, H.finish(job).code)
    local gets = H.route(e, "classification_get")
    local r = H.run(args, w.env, w.cache)
    assert.equal(0, r.code, r.stderr)
    -- a 404 for a create the killed run sent is looked up again when that run would have sent it again
    -- itself (its last commit + 1 s + --timeout): found then, not created twice (76 creates before)
    assert.equal(60, creates())
    assert.equal(16, e:counters().faults.classification_create.stall)
    assert.is_true(H.route(e, "classification_get") - gets >= 60 + 32, "the 32 creates marked sent looked up twice")
    assert.equal(60, #H.read_csv(out))
    H.rmdir(dir)
  end)
end)
