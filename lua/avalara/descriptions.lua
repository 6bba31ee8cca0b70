--- Moved to `avalara.hs.descriptions` (the description cache, part of the hs service); this name keeps working.
-- @module avalara.descriptions
return require "avalara.hs.descriptions"
