--- @module avalara.redis.client moved to `avalara.resp.client` (a general RESP client); this name keeps working.
return require "avalara.resp.client"
