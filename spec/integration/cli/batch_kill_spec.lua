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
        -- every request answers after 100 ms: the creates counted are the ones in flight
        e:configure { latency_ms = 100 }
        local input, out = catalog(dir .. "/in.csv", case.n), dir .. "/out.csv"
        local args = { "batch", input, "--country", case.countries, "--out", out } -- concurrency 16
        local job = H.spawn(args, w.env, w.cache)
        H.until_true(function() return creates() >= 16 end)
        H.signal(job, "KILL")
        assert.equal(137, H.finish(job).code)
        assert.equal(16, creates(), "a full round in flight, none answered")
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
end)
