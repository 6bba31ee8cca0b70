--- Moved to `avalara.paging` (the FetchResult paging, a foundation); this name keeps working.
-- @module avalara.fetch
return require "avalara.paging"
