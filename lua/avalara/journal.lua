--- @module avalara.journal moved to `avalara.batch.journal` (the state of a batch, row by row).
return require "avalara.batch.journal"
