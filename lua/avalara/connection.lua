--- @module avalara.connection moved to `avalara.partner.connection` (this name keeps loading it).
return require "avalara.partner.connection"
