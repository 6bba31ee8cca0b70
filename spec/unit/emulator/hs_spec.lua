-- The HS nomenclature module of the emulator: tree lookups and the keyword
-- classifier. Pure Lua, so it runs under busted without nginx.
package.path = "emulator/lua/?.lua;" .. package.path

local DATA = (os.getenv("PWD") or ".") .. "/emulator/data"

describe("emulator.hs", function()
  local hs = require "emulator.hs"

  setup(function()
    hs.load(DATA)
  end)

  local US = { name = "Harmonized Tariff Schedule A of the United States", block = 840 }
  local EU = { name = "Integrated Tariff of the European Union", block = 999 }

  local function codes(list)
    local out = {}
    for i, r in ipairs(list) do out[i] = r.hsCode end
    return out
  end

  -- The published HsCodeModel fields, and no other (docs/api-contracts.md 3.1).
  local function assert_record(r)
    for k in pairs(r) do
      assert.truthy(({ id = 1, hsCode = 1, parentHsCodeId = 1, description = 1, system = 1, effDate = 1 })[k], k)
    end
    assert.equals("number", type(r.id))
    assert.equals(r.id, math.floor(r.id))
    assert.is_string(r.hsCode)
    assert.is_number(r.parentHsCodeId)
    assert.is_string(r.description)
    assert.is_string(r.system)
    assert.matches("^%d%d%d%d%-%d%d%-%d%d$", r.effDate)
  end

  describe("load", function()
    it("is idempotent", function()
      assert.is_true(hs.load(DATA))
      assert.is_true(hs.load(DATA .. "/"))
      assert.equals(14, #hs.children("XI", US))
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
    it("are the 21 sections, Roman numerals without a system, under one parent", function()
      local s = hs.sections()
      assert.equals(21, #s)
      for _, r in ipairs(s) do
        assert_record(r)
        assert.equals("", r.system)
        assert.equals(s[1].parentHsCodeId, r.parentHsCodeId)
        assert.is_true(r.parentHsCodeId > 0)
      end
      assert.same({ "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV",
        "XV", "XVI", "XVII", "XVIII", "XIX", "XX", "XXI" }, codes(s))
      assert.equals("LIVE ANIMALS; ANIMAL PRODUCTS", s[1].description)
      assert.equals("TEXTILES AND TEXTILE ARTICLES", s[11].description)
    end)
  end)

  describe("ids", function()
    it("are stable, distinct in a system and apart between systems", function()
      local a, b = hs.hierarchy("610910", US), hs.hierarchy("610910", US)
      assert.same(a, b)
      local seen = {}
      for _, r in ipairs(hs.children("84", US)) do
        assert.is_nil(seen[r.id]); seen[r.id] = true
      end
      for _, r in ipairs(hs.sections()) do
        assert.is_nil(seen[r.id]); seen[r.id] = true
      end
      local eu = hs.hierarchy("610910", EU)
      for i = 1, #a do assert.not_equal(a[i].id, eu[i].id) end
      assert.equals(EU.name, eu[4].system)
    end)
  end)

  describe("lookup", function()
    it("returns the node of a chapter, heading or subheading", function()
      assert.same({ hsCode = "6109", parentCode = "61", level = 4, section = "XI",
                    description = "T-shirts, singlets and other vests; knitted or crocheted" },
                  hs.lookup("6109"))
      assert.is_nil(hs.lookup("61").parentCode)
    end)

    it("returns nil for unknown codes, tariff lines the data does not have and sections", function()
      for _, c in ipairs({ "9800", "000000", "610", "abc", "TOTAL", "6109100010", "6109.10", "XI" }) do
        assert.is_nil(hs.lookup(c), c)
      end
      assert.is_nil(hs.lookup(nil))
      assert.is_nil(hs.lookup(610910))
    end)

    it("hands out copies", function()
      hs.lookup("6109").description = "changed"
      assert.equals("T-shirts, singlets and other vests; knitted or crocheted", hs.lookup("6109").description)
    end)
  end)

  describe("children", function()
    it("of a section are its chapters, whose parent is the section", function()
      local sec = hs.sections()[11]
      local ch = hs.children("XI", US)
      assert.same({ "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61", "62", "63" }, codes(ch))
      for _, r in ipairs(ch) do
        assert_record(r)
        assert.equals(sec.id, r.parentHsCodeId)
        assert.equals(US.name, r.system)
      end
    end)

    it("of a chapter are its headings, in order, under the chapter's id", function()
      local chapter = hs.hierarchy("61", US)[2]
      local h = hs.children("61", US)
      assert.equals(17, #h)
      assert.equals("6101", h[1].hsCode)
      assert.equals("6117", h[17].hsCode)
      for _, r in ipairs(h) do assert.equals(chapter.id, r.parentHsCodeId) end
      assert.equals(86, #hs.children("84", US))
    end)

    it("of a heading are its subheadings", function()
      assert.same({ "610910", "610990" }, codes(hs.children("6109", US)))
    end)

    it("of a subheading are none: the data stops at 6 digits", function()
      assert.same({}, hs.children("610910", US))
    end)

    it("of an unknown code are nil", function()
      for _, c in ipairs({ "9800", "x", "6109100010", "xi", "" }) do assert.is_nil(hs.children(c, US), c) end
    end)

    it("never include chapter 99, which belongs to no section", function()
      for _, s in ipairs(hs.sections()) do
        for _, r in ipairs(hs.children(s.hsCode, US)) do assert.not_equal("99", r.hsCode) end
      end
    end)
  end)

  describe("hierarchy", function()
    it("runs from the root record down to the code, each the parent of the next", function()
      local chain = hs.hierarchy("610910", US)
      assert.same({ "", "61", "6109", "610910" }, codes(chain))
      assert.same({ id = 8400000, hsCode = "", parentHsCodeId = 0, system = US.name, effDate = "2022-01-01",
        description = "The root of the Harmonized System code tree." }, chain[1])
      for i, r in ipairs(chain) do
        assert_record(r)
        if i > 1 then assert.equals(chain[i - 1].id, r.parentHsCodeId) end
      end
      assert.same({ "", "61" }, codes(hs.hierarchy("61", US)))
    end)

    it("has no sections in it and is nil for unknown codes", function()
      assert.is_nil(hs.hierarchy("XI", US))
      assert.is_nil(hs.hierarchy("980000", US))
      assert.is_nil(hs.hierarchy("6109100010", US))
      assert.is_nil(hs.hierarchy("", US))
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
