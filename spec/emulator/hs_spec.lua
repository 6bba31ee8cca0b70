-- The HS nomenclature module of the emulator: tree lookups and the keyword
-- classifier. Pure Lua, so it runs under busted without nginx.
package.path = "emulator/lua/?.lua;" .. package.path

local DATA = (os.getenv("PWD") or ".") .. "/emulator/data"

describe("emulator.hs", function()
  local hs = require "emulator.hs"

  setup(function()
    hs.load(DATA)
  end)

  describe("load", function()
    it("is idempotent", function()
      assert.is_true(hs.load(DATA))
      assert.is_true(hs.load(DATA .. "/"))
      assert.equals(97, #hs.children(""))
    end)

    it("fails clearly when the files are missing", function()
      local ok, err = pcall(hs.load, "/nonexistent/hs-data")
      assert.is_false(ok)
      assert.matches("cannot read HS data", err, 1, true)
      hs.load(DATA)   -- a failed load keeps the data loaded before
      assert.is_table(hs.lookup("6109"))
    end)
  end)

  describe("sections", function()
    it("lists the 21 sections in order", function()
      local s = hs.sections()
      assert.equals(21, #s)
      assert.same({ section = "I", name = "Live animals; animal products" }, s[1])
      assert.equals("XI", s[11].section)
      assert.equals("Textiles and textile articles", s[11].name)
      assert.equals("XXI", s[21].section)
    end)
  end)

  describe("lookup", function()
    it("returns camelCase records", function()
      assert.same({ hsCode = "6109", parentCode = "61", level = 4, section = "XI",
                    description = "T-shirts, singlets and other vests; knitted or crocheted" },
                  hs.lookup("6109"))
    end)

    it("gives chapters no parent", function()
      local ch = hs.lookup("61")
      assert.equals(2, ch.level)
      assert.is_nil(ch.parentCode)
    end)

    it("returns nil for unknown codes", function()
      assert.is_nil(hs.lookup("9800"))
      assert.is_nil(hs.lookup("000000"))
      assert.is_nil(hs.lookup("610"))
      assert.is_nil(hs.lookup("abc"))
      assert.is_nil(hs.lookup("TOTAL"))
      assert.is_nil(hs.lookup(nil))
    end)

    it("resolves tariff lines (7 to 10 digits) to their subheading", function()
      assert.equals("610910", hs.lookup("6109100010").hsCode)
      assert.equals("610910", hs.lookup("61091000").hsCode)
      assert.equals("610910", hs.lookup("6109.10.0010").hsCode)
      assert.is_nil(hs.lookup("61091000101"))
    end)

    it("hands out copies", function()
      hs.lookup("6109").description = "changed"
      assert.equals("T-shirts, singlets and other vests; knitted or crocheted",
                    hs.lookup("6109").description)
    end)
  end)

  describe("children", function()
    it("of nothing are the 97 chapters", function()
      local ch = hs.children("")
      assert.equals(97, #ch)
      assert.equals("01", ch[1].hsCode)
      assert.equals("97", ch[96].hsCode)
      -- The data's 97th chapter is 99, "Commodities not specified according
      -- to kind", which belongs to no section.
      assert.equals("99", ch[97].hsCode)
      assert.is_nil(ch[97].section)
      assert.same(ch, hs.children(nil))
      for _, c in ipairs(ch) do assert.equals(2, c.level) end
    end)

    it("of a chapter are its headings, in order", function()
      local h = hs.children("61")
      assert.equals(17, #h)
      assert.equals("6101", h[1].hsCode)
      assert.equals("6117", h[17].hsCode)
      for _, r in ipairs(h) do
        assert.equals("61", r.parentCode)
        assert.equals(4, r.level)
      end
    end)

    it("of a heading are its subheadings", function()
      local s = hs.children("6109")
      assert.same({ "610910", "610990" }, { s[1].hsCode, s[2].hsCode })
    end)

    it("of a leaf are none", function()
      assert.same({}, hs.children("610910"))
      assert.same({}, hs.children("6109100010"))
    end)

    it("of an unknown code are nil", function()
      assert.is_nil(hs.children("9800"))
      assert.is_nil(hs.children("x"))
    end)
  end)

  describe("hierarchy", function()
    local function codes(chain)
      local out = {}
      for i, r in ipairs(chain) do out[i] = r.hsCode end
      return out
    end

    it("runs from the chapter down to the code", function()
      assert.same({ "61", "6109", "610910" }, codes(hs.hierarchy("610910")))
      assert.same({ "61", "6109" }, codes(hs.hierarchy("6109")))
      assert.same({ "61" }, codes(hs.hierarchy("61")))
    end)

    it("resolves a 10-digit tariff line to its subheading", function()
      assert.same({ "61", "6109", "610910" }, codes(hs.hierarchy("6109100010")))
    end)

    it("is nil for unknown codes", function()
      assert.is_nil(hs.hierarchy("980000"))
      assert.is_nil(hs.hierarchy(""))
    end)
  end)

  describe("classify", function()
    -- description, expected 4-digit heading(s), expected 6-digit subheading
    -- (if pinned), and whether the classifier gets it (false = known miss).
    local PRODUCTS = {
      { "men's cotton t-shirt", { "6109" }, "610910" },
      { "women's wool sweater", { "6110" } },
      { "leather handbag", { "4202" } },
      -- A known miss: 8208.30 ("knives ... for kitchen appliances") wins on
      -- "kitchen", which no 8211 text mentions.
      { "stainless steel kitchen knife", { "8211" }, nil, false },
      { "laptop computer", { "8471" }, "847130" },
      { "smartphone", { "8517" }, "851713" },
      { "ceramic coffee mug", { "6912", "6911" } },
      { "running shoes with rubber soles", { "6404" } },
      { "fresh apples", { "0808" }, "080810" },
      { "roasted coffee beans", { "0901" } },
      { "green tea", { "0902" } },
      { "red wine in bottles", { "2204" } },
      { "lithium ion battery", { "8507" }, "850760" },
      { "wooden dining table", { "9403" } },
      { "plastic toy car for children", { "9503" } },
      { "LED light bulb", { "8539", "9405" } },
      { "cotton bath towel", { "6302" } },
      { "bicycle", { "8712" }, "871200" },
      { "olive oil", { "1509" } },
      { "wrist watch", { "9101", "9102" } },
    }

    local function heading_ok(r, headings)
      if not r then return false end
      for _, h in ipairs(headings) do
        if r.hs_code:sub(1, 4) == h then return true end
      end
      return false
    end

    for _, p in ipairs(PRODUCTS) do
      local text, headings, sub, expected = p[1], p[2], p[3], p[4] ~= false
      if expected then
        it("puts \"" .. text .. "\" in " .. table.concat(headings, " or "), function()
          local r = hs.classify(text)
          assert.is_table(r, text)
          assert.is_true(heading_ok(r, headings), text .. " -> " .. r.hs_code)
          if sub then assert.equals(sub, r.hs_code) end
          assert.equals(hs.lookup(r.hs_code).description, r.description)
          assert.is_number(r.score)
          assert.is_true(r.score > 0)
        end)
      end
    end

    it("gets at least 16 of the 20 products right (hit rate printed)", function()
      local hits, missed = 0, {}
      for _, p in ipairs(PRODUCTS) do
        local r = hs.classify(p[1])
        if heading_ok(r, p[2]) then
          hits = hits + 1
        else
          missed[#missed + 1] = p[1] .. " -> " .. (r and r.hs_code or "nil")
        end
      end
      print(("\nhs.classify hit rate: %d/%d (missed: %s)"):format(
        hits, #PRODUCTS, #missed > 0 and table.concat(missed, "; ") or "none"))
      assert.is_true(hits >= 16)
    end)

    it("answers \"Not enough details.\" when there is too little to go on", function()
      for _, text in ipairs({ "xyz", "", "   ", "the and of", "cotton", "blue thing" }) do
        local r, why = hs.classify(text)
        assert.is_nil(r, text)
        assert.equals("Not enough details.", why)
      end
      local r, why = hs.classify(nil)
      assert.is_nil(r)
      assert.equals("Not enough details.", why)
    end)

    it("handles typographic apostrophes, case and synonyms", function()
      assert.equals("610910", hs.classify("MEN\226\128\153S COTTON T-SHIRT").hs_code)
      assert.equals("610910", hs.classify("cotton tee").hs_code)
      assert.equals("610910", hs.classify("cotton t shirt").hs_code)
    end)

    it("is deterministic", function()
      for _, p in ipairs(PRODUCTS) do
        local a, b = hs.classify(p[1]), hs.classify(p[1])
        assert.same(a, b)
      end
      hs.load(DATA)
      assert.same(hs.classify("leather handbag"), hs.classify("leather handbag"))
    end)

    it("is fast (timing printed, not asserted)", function()
      local n, t0 = 0, os.clock()
      for _ = 1, 50 do
        for _, p in ipairs(PRODUCTS) do hs.classify(p[1]); n = n + 1 end
      end
      print(("hs.classify: %.3f ms per call (%d calls)"):format((os.clock() - t0) * 1000 / n, n))
      local long = string.rep("stainless steel kitchen knife with wooden handle ", 50)
      t0 = os.clock()
      hs.classify(long)
      print(("hs.classify of %d chars: %.3f ms"):format(#long, (os.clock() - t0) * 1000))
    end)
  end)
end)
