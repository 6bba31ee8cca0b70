--- A one-way digest of a string, for names that must not reveal what they
-- name (the token cache key holds a digest of the license key, never the key).
--
--    local digest = require "avalara.digest"
--    print(digest.of("DEMO-LICENSE-KEY-0001"))   -- 43 base64url characters
--
-- SHA-256 comes from the C core (`core.pkce(verifier)` computes
-- `base64url(SHA-256(verifier))`, docs/core.md), chained over the string's
-- hex in pieces the way a hash's compression function is (Merkle-Damgård),
-- with the length last: the same on every Lua the core builds for, without a
-- Lua bit library.
-- @module avalara.digest
local core = require "avalara.core"

local M = {}

local START = "avalara-hscode-digest-1" .. string.rep(".", 43 - #"avalara-hscode-digest-1")
local PIECE = 84 -- hex characters per step: 43 + 84 = 127, under the verifier's 128

--- The digest of `s`: 43 characters of `A-Z a-z 0-9 - _` (256 bits).
-- @string s
-- @treturn string
function M.of(s)
  if type(s) ~= "string" then error("avalara.digest.of: a string is required", 2) end
  local hex = s:gsub(".", function(c) return string.format("%02x", c:byte()) end) .. "." .. #s
  local state = START
  for i = 1, #hex, PIECE do
    local _, challenge = core.pkce(state .. hex:sub(i, i + PIECE - 1))
    state = challenge
  end
  return state
end

return M
