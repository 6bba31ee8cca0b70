--- Moved to `avalara.items.catalog` (part of the Items service); this name keeps working.
-- @module avalara.catalog
return require "avalara.items.catalog"
