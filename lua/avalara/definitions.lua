--- Moved to `avalara.hs.tariff` (sections, codes, hierarchy: the hs service).
-- @module avalara.definitions
return require "avalara.hs.tariff"
