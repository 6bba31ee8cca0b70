-- HS 2022 nomenclature for the emulator: the definitions tree as AvaTax
-- HsCodeModel records, and a small, deterministic keyword classifier. Pure
-- Lua (5.1/LuaJIT and 5.4), no dependencies, so the same file runs inside
-- nginx and under busted.
--
--   local hs = require "emulator.hs"
--   hs.load(data_dir)   -- reads harmonized-system.csv and sections.csv
--   hs.classify(text)   -- {hs_code=, description=, score=} or nil, "Not enough details."
--   hs.sections(), hs.children(code, system), hs.hierarchy(code, system), hs.lookup(code)
--
-- children and hierarchy return HsCodeModel records (docs/api-contracts.md section
-- 3.1): {id, hsCode, parentHsCodeId, description, system, effDate}, for a
-- tariff system {name, block} (see emulator.countries). Ids are deterministic:
-- block * 10000 + n, where n is the code's place in code order (0 = the
-- root), so a code has the same id in every run and every worker. Sections
-- are system-less records in block 1. The data stops at 6-digit
-- subheadings: they are leaves, and no national tariff line or branch record
-- is made up. Callers get fresh tables, so they may change them.

local M = {}

local NOT_ENOUGH = "Not enough details."

-- How much a query word found in a subheading counts, by where it was found:
-- the subheading's own text says most about it, its chapter least.
local W_OWN, W_HEADING, W_CHAPTER = 1.0, 0.6, 0.3
-- A word found at several levels is a surer match: each further level adds
-- this much.
local W_ALSO = 0.15
-- Words that only name a use or give examples count this much.
local MINOR = 0.5
-- A lone word is enough only when it is distinctive ("bicycle",
-- "smartphone"); a lone common word ("cotton") does not pin a heading.
local LONE_WORD_MAX_DF = 30
-- Below this the best match is too weak to be an answer.
local MIN_SCORE = 3.0
-- The head noun of a product description ("kitchen KNIFE", "red WINE in
-- bottles") names the goods; the other words mostly qualify them. It counts
-- more, and subheadings that match it rank above those that do not.
local HEAD_BOOST = 1.5
-- Long descriptions are cut: the words past this add nothing but time.
local MAX_QUERY_TERMS = 40

local STOP = {}
for w in ([[a an and any are as at be been being but by each etc for from has
  have having in including include includes included into is it its kind kinds like
  made more less nes nec no nor not of on only or other others per so such than
  that the their them then there thereof therefor therefore these they this those
  to used use using was were whether which with within without new thing things
  item items product products type types heading subheading chapter]]):gmatch("%a+") do
  STOP[w] = true
end

-- Plurals the suffix rules below would get wrong.
local IRREGULAR = {
  knives = "knife", leaves = "leaf", halves = "half", shelves = "shelf",
  calves = "calf", loaves = "loaf", wolves = "wolf", children = "child",
  teeth = "tooth", geese = "goose", mice = "mouse", potatoes = "potato",
  tomatoes = "tomato", series = "series", species = "species",
}

-- Retail words the customs nomenclature does not use, mapped to the words it
-- does. Only queries are expanded; the original word is kept too.
local SYNONYMS = {
  tee = "tshirt", tees = "tshirt",
  sweater = "jersey pullover", jumper = "jersey pullover",
  hoodie = "jersey pullover sweatshirt", sweatshirt = "jersey pullover",
  jeans = "trousers denim", pants = "trousers", slacks = "trousers",
  laptop = "portable automatic data processing machine",
  notebook = "portable automatic data processing machine",
  computer = "automatic data processing machine",
  pc = "automatic data processing machine",
  phone = "telephone", cellphone = "telephone smartphone",
  smartphone = "telephone", mobile = "telephone",
  tv = "television",
  shoe = "footwear", sneaker = "footwear sports shoe", trainer = "footwear sports shoe",
  boot = "footwear", sandal = "footwear", slipper = "footwear",
  running = "sports",
  mug = "tableware", cup = "tableware", plate = "tableware", bowl = "tableware",
  dish = "tableware",
  bulb = "lamp",
  towel = "towelling toilet linen",
  battery = "accumulator", rechargeable = "accumulator",
  table = "furniture", dining = "furniture", desk = "furniture",
  wardrobe = "furniture", cabinet = "furniture",
  sofa = "seat", couch = "seat", chair = "seat",
  bike = "bicycle",
  purse = "handbag",
  jewelry = "jewellery", aluminum = "aluminium", fiber = "fibre", color = "colour",
}

local lower, gsub, find, sub, concat = string.lower, string.gsub, string.find, string.sub, table.concat
local floor, log = math.floor, math.log

-- Light stemming: enough to fold the plurals of the nomenclature and of
-- product descriptions together ("batteries" and "battery").
local function stem(w)
  local irr = IRREGULAR[w]
  if irr then return irr end
  local n = #w
  if n <= 3 then return w end
  if sub(w, -3) == "ies" and n > 4 then return sub(w, 1, -4) .. "y" end
  if sub(w, -4) == "sses" then return sub(w, 1, -3) end
  local e3 = sub(w, -4, -3)
  if sub(w, -2) == "es" and (e3 == "sh" or e3 == "ch" or sub(w, -3) == "xes" or sub(w, -3) == "zes") then
    return sub(w, 1, -3)
  end
  local e2 = sub(w, -2)
  if sub(w, -1) == "s" and e2 ~= "ss" and e2 ~= "us" and e2 ~= "is" then
    return sub(w, 1, -2)
  end
  return w
end

local function keep(w)
  return #w >= 2 and not STOP[w] and not find(w, "^%d+$")
end

-- Appends the terms of text to out (may repeat). A hyphenated word gives its
-- joined form and its parts: "t-shirts" -> "tshirt", "shirt".
local function chunks(text)
  text = lower(text)
  -- (each pattern is run only where its plain text occurs: most descriptions
  -- have none, and the emulator builds its index at every start)
  if find(text, "\226\128\153", 1, true) then text = gsub(text, "\226\128\153", "'") end -- typographic apostrophe
  if find(text, "'", 1, true) then text = gsub(gsub(text, "'s", " "), "'", "") end          -- "men's" -> "men"
  local out = {}
  for chunk in text:gmatch("[%w\128-\255%-]+") do out[#out + 1] = chunk end
  return out
end

local function terms(text, out)
  for _, chunk in ipairs(chunks(text)) do
    if find(chunk, "-", 1, true) then
      local joined = stem(gsub(chunk, "%-", ""))
      if keep(joined) then out[#out + 1] = joined end
      for part in chunk:gmatch("[^%-]+") do
        part = stem(part)
        if part ~= joined and keep(part) then out[#out + 1] = part end
      end
    else
      local w = stem(chunk)
      if keep(w) then out[#out + 1] = w end
    end
  end
  return out
end

-- The nomenclature often names what a code is NOT ("of textile materials
-- (other than cotton)"); indexing those words would make the exclusion match.
-- Returns the text that names the goods, and the text that only names their
-- use or gives examples ("tyres, of a kind used on BICYCLES"), which counts less.
local function split_text(desc)
  local s = " " .. lower(desc) .. " "
  -- Each pattern runs only where its plain text occurs (the same result:
  -- most descriptions have none of them, and the index is built at every start).
  local function drop(plain, pattern)
    if find(s, plain, 1, true) then s = gsub(s, pattern, " ") end
  end
  drop("(other than", "%(other than[^)]*%)")
  drop("(not", "%(not%s[^)]*%)")
  drop("(excluding", "%(excluding[^)]*%)")
  drop("other than", "other than[^;()]*")
  drop("excluding", "excluding[^;()]*")
  drop("except", "except[^;()]*")
  drop("not falling", "not falling[^;()]*")
  drop("not", "[,;]%s*not%s[^,;()]*")
  local minor = {}
  local function move(plain, pattern)
    if find(s, plain, 1, true) then
      s = gsub(s, pattern, function(m) minor[#minor + 1] = m; return " " end)
    end
  end
  move("(e.g.", "%(e%.g%.[^)]*%)")
  move("for", "[%s,]for%s[^;()]*")
  move("used", "[%s,]used%s[^;()]*")
  move("of a kind", "[%s,]of a kind%s[^;()]*")
  move("suitable", "[%s,]suitable%s[^;()]*")
  return s, concat(minor, " ")
end

-- Term -> factor: 1 for words naming the goods, MINOR for the rest.
local function term_factors(desc)
  local main, minor = split_text(desc)
  local set = {}
  for _, t in ipairs(terms(minor, {})) do set[t] = MINOR end
  for _, t in ipairs(terms(main, {})) do set[t] = 1 end
  return set
end

-- CSV ------------------------------------------------------------------------

-- Splits one line into fields, honouring quotes ("a, b" and "" escapes).
local function csv_fields(line)
  local fields, pos, n = {}, 1, #line
  while pos <= n + 1 do
    if sub(line, pos, pos) == '"' then
      local buf, i = {}, pos + 1
      while true do
        local q = find(line, '"', i, true)
        if not q then buf[#buf + 1] = sub(line, i); pos = n + 2; break end
        buf[#buf + 1] = sub(line, i, q - 1)
        if sub(line, q + 1, q + 1) == '"' then
          buf[#buf + 1] = '"'; i = q + 2
        else
          pos = q + 2   -- skip the closing quote and the comma after it
          break
        end
      end
      fields[#fields + 1] = concat(buf)
    else
      local c = find(line, ",", pos, true) or n + 1
      fields[#fields + 1] = sub(line, pos, c - 1)
      pos = c + 1
    end
  end
  return fields
end

local function read_csv(path)
  local f, err = io.open(path, "rb")
  if not f then error("emulator.hs: cannot read HS data: " .. tostring(err), 0) end
  local text = f:read("*a")
  f:close()
  if sub(text, 1, 3) == "\239\187\191" then text = sub(text, 4) end   -- UTF-8 BOM
  local rows = {}
  -- The last line may have no newline, and lines may end in CRLF.
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = gsub(line, "\r$", "")
    if find(line, "%S") then rows[#rows + 1] = csv_fields(line) end
  end
  return rows
end

local function trim(s) return (gsub(s, "^%s+", ""):gsub("%s+$", "")) end

-- State ----------------------------------------------------------------------

local state        -- nil until load()

-- Ids: one block of BLOCK ids per tariff system; block 1 holds the sections.
local BLOCK = 10000
local SECTIONS_BLOCK = 1
M.BLOCK = BLOCK
-- HS 2022 entered into force on 1 January 2022; no end date yet.
M.EFF_DATE = "2022-01-01"
M.ROOT_DESCRIPTION = "The root of the Harmonized System code tree."

-- The internal node of a code, as a fresh table (no index is exposed).
local function node_copy(n)
  if not n then return nil end
  return { hsCode = n.hsCode, description = n.description, parentCode = n.parentCode,
           level = n.level, section = n.section }
end

local function build(data_dir)
  local st = { by_code = {}, kids = {}, chapters = {}, sections = {}, section_chapters = {},
               by_section = {}, subs = {}, postings = {}, df = {}, nrecords = 0 }

  for i, row in ipairs(read_csv(data_dir .. "/sections.csv")) do
    local id, name = trim(row[1] or ""), trim(row[2] or "")
    -- Skip the header.
    if not (i == 1 and id == "section") and id ~= "" then
      local sec = { hsCode = id, description = name:upper(), ordinal = #st.sections + 1 }
      st.sections[#st.sections + 1] = sec
      st.by_section[id] = sec
      st.section_chapters[id] = {}
    end
  end

  for _, row in ipairs(read_csv(data_dir .. "/harmonized-system.csv")) do
    local code, level = row[2] or "", tonumber(row[5])
    -- Keeps real chapters, headings and subheadings only: this drops the
    -- header and the "TOTAL" row (level 5).
    if (level == 2 or level == 4 or level == 6) and #code == level and find(code, "^%d+$") then
      -- Chapter 99 ("Commodities not specified according to kind") has the
      -- pseudo-section "TOTAL": it belongs to no section.
      local section = trim(row[1] or "")
      local rec = { hsCode = code, description = trim(row[3] or ""), level = level,
                    section = st.by_section[section] and section or nil,
                    parentCode = level > 2 and row[4] or nil }
      st.by_code[code] = rec
      st.kids[code] = {}
    end
  end
  -- Children in code order whatever the file order; orphans are dropped.
  local codes = {}
  for code in pairs(st.by_code) do codes[#codes + 1] = code end
  table.sort(codes)
  local ordinal = 0
  for _, code in ipairs(codes) do
    local rec = st.by_code[code]
    local siblings = rec.level == 2 and st.chapters or st.kids[rec.parentCode]
    if siblings then
      siblings[#siblings + 1] = rec
      ordinal = ordinal + 1
      rec.ordinal = ordinal
      if rec.level == 2 and rec.section then
        local list = st.section_chapters[rec.section]
        list[#list + 1] = rec
      end
    else
      st.by_code[code] = nil
    end
  end
  local kept = {}
  for _, code in ipairs(codes) do
    if st.by_code[code] then kept[#kept + 1] = code end
  end
  codes = kept
  if #st.chapters == 0 then error("emulator.hs: no HS codes in " .. data_dir, 3) end
  if ordinal >= BLOCK then error("emulator.hs: too many codes for the id blocks", 3) end

  -- Terms per record (as a set), and document frequency over all records.
  local tset = {}
  for _, code in ipairs(codes) do
    local set = term_factors(st.by_code[code].description)
    tset[code] = set
    st.nrecords = st.nrecords + 1
    for t in pairs(set) do st.df[t] = (st.df[t] or 0) + 1 end
  end

  -- Inverted index over subheadings: term -> parallel arrays of subheading
  -- numbers and the weight of the best place the term was found.
  local postings = st.postings
  for _, code in ipairs(codes) do
    local rec = st.by_code[code]
    if rec.level == 6 then
      local heading = st.by_code[rec.parentCode]
      -- Chapter 99 is not a classification anyone wants back.
      if heading and rec.section then
        local idx = #st.subs + 1
        st.subs[idx] = rec
        local ntok = 0
        for _ in pairs(tset[code]) do ntok = ntok + 1 end
        rec.ntok = ntok
        local best, levels = {}, {}
        local function weigh(set, w)
          for t, f in pairs(set or {}) do
            local wf = w * f
            if not best[t] or wf > best[t] then best[t] = wf end
            levels[t] = (levels[t] or 0) + 1
          end
        end
        weigh(tset[code], W_OWN)
        weigh(tset[heading.hsCode], W_HEADING)
        weigh(tset[heading.parentCode], W_CHAPTER)
        for t, n in pairs(levels) do best[t] = best[t] + W_ALSO * (n - 1) end
        for t, w in pairs(best) do
          local p = postings[t]
          if not p then p = { n = 0, idx = {}, w = {} }; postings[t] = p end
          p.n = p.n + 1
          p.idx[p.n], p.w[p.n] = idx, w
        end
      end
    end
  end
  st.dir = data_dir
  return st
end

-- Loading again from the same folder is a no-op (nginx may call it from
-- init_by_lua and from the handlers); another folder replaces the data.
function M.load(data_dir)
  assert(type(data_dir) == "string" and data_dir ~= "", "emulator.hs.load: data_dir must be a path")
  data_dir = gsub(data_dir, "/+$", "")
  if state and state.dir == data_dir then return true end
  state = build(data_dir)
  return true
end

local function loaded()
  if not state then error("emulator.hs: call load(data_dir) first", 3) end
  return state
end

-- The HsCodeModel of a node in a system, under the parent id given.
local function record(n, system, parent_id)
  return { id = system.block * BLOCK + n.ordinal, hsCode = n.hsCode, parentHsCodeId = parent_id,
           description = n.description, system = system.name, effDate = M.EFF_DATE }
end

local function root_record(system)
  return { id = system.block * BLOCK, hsCode = "", parentHsCodeId = 0, description = M.ROOT_DESCRIPTION,
           system = system.name, effDate = M.EFF_DATE }
end

local SECTIONS = { name = "", block = SECTIONS_BLOCK }
local SECTIONS_ROOT_ID = SECTIONS_BLOCK * BLOCK

-- Whether `code` is a section numeral of the data ("XI").
function M.is_section(code)
  return type(code) == "string" and loaded().by_section[code] ~= nil
end

-- The node of a chapter, heading or subheading (exact code, digits as
-- written): {hsCode, description, parentCode, level, section}, or nil.
function M.lookup(code)
  if type(code) ~= "string" then return nil end
  return node_copy(loaded().by_code[code])
end

-- The 21 sections: records with Roman numerals and no system, children of
-- the (unlisted) root of the sections.
function M.sections()
  local st, out = loaded(), {}
  for i, s in ipairs(st.sections) do out[i] = record(s, SECTIONS, SECTIONS_ROOT_ID) end
  return out
end

-- The next level below `code` in `system`: the chapters of a section (their
-- parent id is the section's), the headings of a chapter, the subheadings
-- of a heading; {} below a subheading (a leaf here); nil for an unknown code.
function M.children(code, system)
  local st = loaded()
  if type(code) ~= "string" then return nil end
  local sec = st.by_section[code]
  local parent, kids
  if sec then
    parent, kids = SECTIONS_BLOCK * BLOCK + sec.ordinal, st.section_chapters[code]
  else
    local n = st.by_code[code]
    if not n then return nil end
    parent, kids = system.block * BLOCK + n.ordinal, st.kids[code]
  end
  local out = {}
  for i, k in ipairs(kids) do out[i] = record(k, system, parent) end
  return out
end

-- The chain from the system's root record down to `code` (a chapter,
-- heading or subheading; sections are not part of it), or nil.
function M.hierarchy(code, system)
  local st = loaded()
  local n = type(code) == "string" and st.by_code[code]
  if not n then return nil end
  local nodes = {}
  while n do
    table.insert(nodes, 1, n)
    n = n.parentCode and st.by_code[n.parentCode]
  end
  local root = root_record(system)
  local chain, parent = { root }, root.id
  for _, node in ipairs(nodes) do
    local rec = record(node, system, parent)
    chain[#chain + 1] = rec
    parent = rec.id
  end
  return chain
end

-- Classification -------------------------------------------------------------

-- Words that name a form, a pack or an attribute rather than the goods: in
-- "coffee beans" the goods are coffee, in "cotton shirt size M" a shirt.
local NOT_HEAD = {}
for w in ([[bean piece slice powder tablet capsule set kit pack packet box bag bottle
  can jar pair size colour color black white blue red yellow pink grey gray brown
  small medium large]]):gmatch("%a+") do
  NOT_HEAD[w] = true
end

-- The head noun: the last known word before the first preposition or comma,
-- which start the qualifiers ("running SHOES with rubber soles").
local function head_word(st, text)
  local t = " " .. lower(text) .. " "
  local cut = #t
  for _, prep in ipairs({ ",", " with ", " for ", " in ", " of ", " from ", " on ", " without ", " made " }) do
    local at = find(t, prep, 1, true)
    if at and at < cut then cut = at end
  end
  local words = terms(sub(t, 1, cut), {})
  for i = #words, 1, -1 do
    local w = words[i]
    if (st.postings[w] or SYNONYMS[w]) and not (NOT_HEAD[w] and i > 1) then return w end
  end
  return nil
end

-- Query terms: the words, their synonyms, and adjacent pairs written as one
-- word when the nomenclature knows that word ("t shirt", "wrist watch").
-- Returns the terms, their boosts, and the words the nomenclature knows.
local function query_terms(st, text)
  local raw = terms(text, {})
  local head = head_word(st, text)
  local list, boost, meaningful = {}, {}, {}
  local function add(t, b)
    if not st.postings[t] then return end
    if boost[t] then
      if b > boost[t] then boost[t] = b end
    elseif #list < MAX_QUERY_TERMS then
      list[#list + 1] = t
      boost[t] = b
    end
  end
  for _, w in ipairs(raw) do
    local b = (w == head) and HEAD_BOOST or 1
    local syn = SYNONYMS[w]
    if st.postings[w] or syn then meaningful[w] = true end
    add(w, b)
    if syn then
      for _, s in ipairs(terms(syn, {})) do add(s, b) end
    end
  end
  -- Pairs are joined from the words as written, so "t shirt" finds "tshirt"
  -- although "t" alone is too short to be a term.
  local words = chunks(text)
  for i = 1, #words - 1 do
    local joined = stem(gsub(words[i] .. words[i + 1], "%-", ""))
    if keep(joined) and st.postings[joined] then
      add(joined, (stem(words[i + 1]) == head) and HEAD_BOOST or 1)
      meaningful[joined] = true
    end
  end
  local n, only = 0, nil
  for w in pairs(meaningful) do n = n + 1; only = w end
  return list, boost, n, only
end

function M.classify(description)
  local st = loaded()
  if type(description) ~= "string" then return nil, NOT_ENOUGH end
  local list, boost, nmeaningful, only = query_terms(st, description)
  if #list == 0 or nmeaningful == 0 then return nil, NOT_ENOUGH end
  if nmeaningful == 1 and (NOT_HEAD[only] or
      (not SYNONYMS[only] and (st.df[only] or math.huge) > LONE_WORD_MAX_DF)) then
    return nil, NOT_ENOUGH
  end

  local acc, headhit, touched = {}, {}, {}
  for _, t in ipairs(list) do
    -- IDF: a word found in few records says more than one found in many.
    local idf = log(1 + st.nrecords / (st.df[t] or 1)) * boost[t]
    local is_head = boost[t] > 1
    local p = st.postings[t]
    local pidx, pw = p.idx, p.w
    for k = 1, p.n do
      local i = pidx[k]
      local cur = acc[i]
      if not cur then touched[#touched + 1] = i; cur = 0 end
      acc[i] = cur + idf * pw[k]
      -- The head must be in the subheading's or heading's own words: a
      -- chapter title is too broad to give a subheading priority.
      if is_head and pw[k] > W_CHAPTER + 1e-9 then headhit[i] = true end
    end
  end

  -- Best: matches of the head noun first, then by score; ties go to the
  -- shorter (more specific) description, then the lowest code, so the answer
  -- never depends on table iteration order.
  local best, best_score, best_rank, best_head
  for _, i in ipairs(touched) do
    local rec, score, head = st.subs[i], acc[i], headhit[i] or false
    local rank = score - 0.01 * rec.ntok
    local better
    if not best or head ~= best_head then
      better = not best or head
    else
      better = rank > best_rank + 1e-9 or (rank > best_rank - 1e-9 and rec.hsCode < best.hsCode)
    end
    if better then best, best_score, best_rank, best_head = rec, score, rank, head end
  end
  if not best or best_score < MIN_SCORE then return nil, NOT_ENOUGH end
  return { hs_code = best.hsCode, description = best.description,
           score = floor(best_score * 1000 + 0.5) / 1000 }
end

return M
