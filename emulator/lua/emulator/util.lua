-- Small helpers shared by every handler: randomness, encoding, request
-- parsing and the response writers (JSON, form-urlencoded; AvaTax errors
-- are emulator.errors).
local ffi = require "ffi"
local cjson = require "cjson.safe"

local M = {}

-- nginx links OpenSSL, so its symbols are in the process: use them for
-- cryptographic randomness and for PKCE's SHA-256 instead of math.random.
ffi.cdef [[
int RAND_bytes(unsigned char *buf, int num);
unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
const EVP_MD *EVP_sha384(void);
const EVP_MD *EVP_sha512(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len, const unsigned char *d, size_t n,
                    unsigned char *md, unsigned int *md_len);
]]

local C = ffi.C

function M.random_bytes(n)
  local buf = ffi.new("unsigned char[?]", n)
  if C.RAND_bytes(buf, n) ~= 1 then
    error("RAND_bytes failed")
  end
  return ffi.string(buf, n)
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
M.hex = hex

-- 32 hex digits, the shape of the 2012 service's tokens.
function M.token()
  return hex(M.random_bytes(16))
end

-- A version 4 UUID, used for correlation ids and classification ids.
function M.uuid()
  local r = M.random_bytes(16)
  -- Version nibble 4 and the RFC 4122 variant bits.
  local h = hex(r:sub(1, 6) .. string.char(r:byte(7) % 16 + 0x40, r:byte(8), r:byte(9) % 64 + 0x80)
    .. r:sub(10))
  return h:sub(1, 8) .. "-" .. h:sub(9, 12) .. "-" .. h:sub(13, 16) .. "-"
    .. h:sub(17, 20) .. "-" .. h:sub(21, 32)
end

function M.sha256(s)
  local md = ffi.new("unsigned char[32]")
  C.SHA256(s, #s, md)
  return ffi.string(md, 32)
end

-- HMAC-SHA256 (RFC 2104) of `message` under `key`, as 64 lowercase hex
-- digits: the signature of webhook deliveries (emulator.webhooks).
function M.hmac_sha256_hex(key, message)
  local md, len = ffi.new("unsigned char[32]"), ffi.new("unsigned int[1]")
  if C.HMAC(C.EVP_sha256(), key, #key, message, #message, md, len) == nil then error("HMAC failed") end
  return hex(ffi.string(md, len[0]))
end

-- HMAC-SHA256, -384 or -512 of `message` under `key` (`algorithm`: the
-- published names "sha256", "sha384", "sha512"), as lowercase hex.
function M.hmac_hex(algorithm, key, message)
  local md_of = { sha256 = C.EVP_sha256, sha384 = C.EVP_sha384, sha512 = C.EVP_sha512 }
  local md, len = ffi.new("unsigned char[64]"), ffi.new("unsigned int[1]")
  if C.HMAC(md_of[algorithm](), key, #key, message, #message, md, len) == nil then error("HMAC failed") end
  return hex(ffi.string(md, len[0]))
end

-- base64url without padding (RFC 7636 appendix A).
function M.base64url(s)
  return (ngx.encode_base64(s):gsub("%+", "-"):gsub("/", "_"):gsub("=+$", ""))
end

function M.now()
  ngx.update_time()
  return ngx.now()
end

-- ISO 8601 UTC with milliseconds, as AvaTax's dates.
function M.iso_date(t)
  local ms = math.floor((t % 1) * 1000)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. string.format(".%03dZ", ms)
end

-- The form-urlencoding used by the seed's error bodies (.NET's
-- HttpUtility.UrlEncode: lowercase hex, space as "+").
function M.form_encode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c)
    if c == " " then return "+" end
    return string.format("%%%02x", c:byte())
  end))
end

-- RFC 3986 percent-decoding of a path segment ("+" stays "+").
function M.percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- RFC 3986 percent-encoding of everything but the unreserved characters
-- (as JavaScript's encodeURIComponent, which the AvaTax SDKs use).
function M.percent_encode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- Avalara's tokens for the characters an item code cannot carry in a path
-- (docs/api-contracts.md section 6: `_-ava2f-_` for "/", ...), decoded after
-- percent-decoding.
local AVA_TOKENS = { ["2f"] = "/", ["2b"] = "+", ["3f"] = "?", ["25"] = "%", ["23"] = "#", ["27"] = "'",
  ["22"] = '"' }

function M.decode_ava(s)
  return (s:gsub("_%-ava(%x%x)%-_", function(h) return AVA_TOKENS[h:lower()] end))
end

function M.form_decode(s)
  s = s:gsub("%+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The first value of a parameter that may have been repeated.
local function first(v)
  if type(v) == "table" then return v[1] end
  if v == true then return "" end
  return v
end

local function flatten(args)
  local out = {}
  for k, v in pairs(args) do out[k] = first(v) end
  return out
end

-- Query parameters merged under the form body (POST wins), so operations
-- that accept both (2012 generate_token) read either.
function M.params()
  local out = flatten(ngx.req.get_uri_args(100))
  if ngx.req.get_method() == "POST" and M.is_form() then
    ngx.req.read_body()
    local post = ngx.req.get_post_args(100)
    for k, v in pairs(post) do out[k] = first(v) end
  end
  return out
end

function M.form_args()
  if not M.is_form() then return {} end
  ngx.req.read_body()
  return flatten(ngx.req.get_post_args(100))
end

local function media_type()
  local ct = ngx.var.content_type
  if not ct then return nil end
  return ct:match("^%s*([^;%s]+)"):lower()
end
M.media_type = media_type

function M.is_form()
  return media_type() == "application/x-www-form-urlencoded"
end

function M.is_json()
  local mt = media_type()
  return mt == "application/json" or (mt ~= nil and mt:match("^application/[%w%.%-]+%+json$") ~= nil)
end

function M.body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    -- Bodies larger than client_body_buffer_size spill into a file.
    local path = ngx.req.get_body_file()
    if path then
      local f = io.open(path, "rb")
      if f then body = f:read("*a"); f:close() end
    end
  end
  return body or ""
end

-- lua-cjson 2.1 (Debian's) encodes an empty Lua table as an object: a list
-- that may be empty is sent through M.list, which gives this marker for an
-- empty one, and M.json_encode writes the marker as [].
M.EMPTY_ARRAY = "\1\2empty array\2\1"
local EMPTY_JSON = '"\\u0001\\u0002empty array\\u0002\\u0001"'
local EMPTY_PATTERN = EMPTY_JSON:gsub("%p", "%%%0")

function M.list(t)
  if t == nil or next(t) == nil then return M.EMPTY_ARRAY end
  return t
end

-- lua-cjson 2.1 escapes "/" as "\/"; undo that (valid either way, but URLs
-- in the discovery document read better). An escaped backslash before "/"
-- is kept: only an odd run of backslashes ends in the "/" escape.
function M.json_encode(v)
  local s, err = cjson.encode(v)
  if not s then return nil, err end
  s = s:gsub("(\\+)/", function(bs)
    if #bs % 2 == 1 then return bs:sub(2) .. "/" end
  end)
  if s:find(EMPTY_JSON, 1, true) then s = s:gsub(EMPTY_PATTERN, "[]") end
  return s
end
M.json_decode = cjson.decode
M.null = cjson.null

function M.send(status, content_type, body, headers)
  ngx.status = status
  if content_type then ngx.header["Content-Type"] = content_type end
  for k, v in pairs(headers or {}) do ngx.header[k] = v end
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(status)
end

-- Runs fn() holding a lock shared by every worker (a key of `dict` taken
-- with add, which is atomic; it expires by itself should a worker die
-- holding it). Returns what fn returns; raises after `wait` seconds.
function M.locked(dict, key, fn, wait)
  local deadline = M.now() + (wait or 5)
  while not dict:add("lock:" .. key, true, 10) do
    if M.now() > deadline then error("emulator: lock " .. key .. " not released") end
    ngx.sleep(0.001)
  end
  local ok, a, b = pcall(fn)
  dict:delete("lock:" .. key)
  if not ok then error(a, 0) end
  return a, b
end

-- Empties a shared dict (the control API's reset).
function M.flush(dict)
  dict:flush_all()
  dict:flush_expired()
end

-- A shallow copy of a stored record without its internal "_" fields: the
-- published model.
function M.public(record)
  local out = {}
  for k, v in pairs(record) do
    if k:sub(1, 1) ~= "_" then out[k] = v end
  end
  return out
end

function M.json(status, value, headers)
  return M.send(status, "application/json; charset=utf-8", M.json_encode(value), headers)
end

return M
