--- Item descriptions as catalogs hold them: HTML (a Shopify export's
-- "Body HTML") made plain text, and text cut to the service's limit on a
-- UTF-8 character boundary. The CLI (`hscode batch`, `hscode items classify`)
-- and the catalog reader (`avalara.items.catalog.read`) use these.
--
--    local text = require "avalara.hs.text"
--    text.strip_html("<p>Men&#39;s <b>cotton</b>&nbsp;t-shirt</p>")  --> "Men's cotton t-shirt"
--    text.truncate(long, 255)                                          --> its first 255 characters, true
-- @module avalara.hs.text

local M = {}

-- Named character references decoded (others are left as they are).
local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'", nbsp = " ", ensp = " ", emsp = " ",
  thinsp = " ", shy = "", copy = "©", reg = "®", trade = "™", hellip = "…", mdash = "—", ndash = "–",
  lsquo = "‘", rsquo = "’", sbquo = "‚", ldquo = "“", rdquo = "”", bdquo = "„", laquo = "«", raquo = "»",
  bull = "•", middot = "·", deg = "°", times = "×", divide = "÷", plusmn = "±", micro = "µ", euro = "€",
  pound = "£", yen = "¥", cent = "¢", sect = "§", para = "¶", frac12 = "½", frac14 = "¼", frac34 = "¾",
  sup2 = "²", sup3 = "³", prime = "′", Prime = "″", iexcl = "¡", iquest = "¿", szlig = "ß" }

-- The Latin-1 letters, U+00C0 to U+00FF (but × and ÷), by their entity names.
local LATIN1 = { "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
  "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute", "Ocirc", "Otilde",
  "Ouml", false, "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute", "THORN", false, "agrave", "aacute",
  "acirc", "atilde", "auml", "aring", "aelig", "ccedil", "egrave", "eacute", "ecirc", "euml", "igrave", "iacute",
  "icirc", "iuml", "eth", "ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml", false, "oslash", "ugrave",
  "uacute", "ucirc", "uuml", "yacute", "thorn", "yuml" }

-- Tags that break a line or a block: they become a space ("a<br>b" is "a b").
local BLOCK = {}
for name in ([[br p div li ul ol dl dt dd tr td th table thead tbody tfoot h1 h2 h3 h4 h5 h6 hr section
  article header footer aside nav blockquote pre figure figcaption caption address main option]]):gmatch("%S+") do
  BLOCK[name] = true
end

--- The UTF-8 text of a code point (nil for a surrogate, one past U+10FFFF, or below 1).
-- @int cp
-- @treturn string|nil
function M.utf8_char(cp)
  if cp < 1 or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return nil end
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
    0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

for i, name in ipairs(LATIN1) do
  if name then ENTITIES[name] = M.utf8_char(0xBF + i) end
end

local function numeric(cp, original)
  if not cp then return original end
  if cp < 32 or cp == 127 or (cp >= 128 and cp < 160) then return " " end -- control characters: a space
  return M.utf8_char(cp) or original
end

--- Decodes HTML character references: named ones (`&amp;`, `&nbsp;` as a
-- plain space, `&eacute;`, ... a common set), decimal (`&#233;`) and hex
-- (`&#xE9;`); an unknown or malformed one is kept as it is.
-- @string s
-- @treturn string
function M.decode_entities(s)
  return (s:gsub("&(#?)([xX]?)(%w+);", function(hash, x, body)
    local original = "&" .. hash .. x .. body .. ";"
    if hash == "" then return ENTITIES[x .. body] or original end
    if x ~= "" then return numeric(body:match("^%x+$") and #body <= 8 and tonumber(body, 16), original) end
    return numeric(body:match("^%d+$") and #body <= 8 and tonumber(body), original)
  end))
end

--- Whether `s` looks like HTML: a tag (`<b>`, `</p>`, `<br/>`, `<!--`) or
-- a character reference (`&amp;`, `&#233;`).
-- @string s
-- @treturn boolean
function M.is_html(s)
  return s:find("<[%a/!]") ~= nil or s:find("&#?%w+;") ~= nil
end

--- HTML as plain text: comments, `<script>` and `<style>` (with their
-- content) and every tag removed (a block tag such as `<br>`, `<p>` or
-- `<li>` leaves a space), character references decoded
-- (`decode_entities`), white space collapsed to single spaces and trimmed.
-- A text that does not look like HTML (`is_html`) is returned as it is.
-- @string s
-- @treturn string
function M.strip_html(s)
  if type(s) ~= "string" then error("avalara.hs.text.strip_html: 's' must be a string", 2) end
  if not M.is_html(s) then return s end
  s = s:gsub("<!%-%-.-%-%->", " ")
  for _, name in ipairs { "script", "style" } do
    local ci = name:gsub("%a", function(c) return "[" .. c .. c:upper() .. "]" end)
    s = s:gsub("<" .. ci .. "[%s>].-</" .. ci .. "%s*>", " ")
  end
  s = s:gsub("<(/?)(%a[%w]*)[^>]*>", function(_, name)
    return BLOCK[name:lower()] and " " or ""
  end)
  s = s:gsub("<![^>]*>", " ")
  s = M.decode_entities(s)
  return (s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

--- The length of a UTF-8 text, in characters (bytes that do not continue one).
-- @string s
-- @treturn int
function M.length(s)
  return #s - select(2, s:gsub("[\128-\191]", ""))
end

--- `s` cut to at most `max` characters, on a UTF-8 character boundary, and
-- whether it was cut.
-- @string s
-- @int max
-- @return the text, and true when it was cut
function M.truncate(s, max)
  if type(s) ~= "string" then error("avalara.hs.text.truncate: 's' must be a string", 2) end
  if type(max) ~= "number" or max < 0 then error("avalara.hs.text.truncate: 'max' must be a number >= 0", 2) end
  if M.length(s) <= max then return s, false end
  local count, i = 0, 1
  while i <= #s do
    local b = s:byte(i)
    if b < 0x80 or b >= 0xC0 then -- a character starts here
      if count == max then break end
      count = count + 1
    end
    i = i + 1
  end
  return s:sub(1, i - 1), true
end

--- Cleans an item's text in place, as the catalog readers do: its
-- `description` and `summary` made plain text (`strip_html`; one left empty
-- is removed) unless `opts.keep_html`, and its `description` cut to
-- `opts.truncate` characters when that is a number (`truncate`).
-- @tparam table item
-- @tparam[opt] table opts `{keep_html, truncate = max characters}`
-- @treturn boolean whether the description was cut
function M.clean(item, opts)
  opts = opts or {}
  if not opts.keep_html then
    for _, key in ipairs { "description", "summary" } do
      if type(item[key]) == "string" then
        item[key] = M.strip_html(item[key])
        if item[key] == "" then item[key] = nil end
      end
    end
  end
  local cut = false
  if opts.truncate and type(item.description) == "string" then
    item.description, cut = M.truncate(item.description, opts.truncate)
  end
  return cut
end

return M
