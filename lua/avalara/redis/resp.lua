--- @module avalara.redis.resp moved to `avalara.resp.protocol` (RESP2 over any socket); this name keeps working.
return require "avalara.resp.protocol"
