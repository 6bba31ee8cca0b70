--- Moved to `avalara.hs.item` (the HS item model, part of the hs service); this name keeps working.
-- @module avalara.item
return require "avalara.hs.item"
