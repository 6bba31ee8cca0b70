--- @module avalara.multi moved to `avalara.transport.driver` (request drivers; not `core.multi`).
return require "avalara.transport.driver"
