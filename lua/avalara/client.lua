--- STAND-IN on branch i22-partner only: the client helper's branch brings the real
-- `avalara.client` (Client, `new`); at the merge, take theirs and drop this file.
-- Here it only lets `avalara.partner` require `avalara.client` instead of `avalara`.
-- @module avalara.client
local M = {}

--- A client (as `avalara.new`).
-- @tparam table opts
function M.new(opts) return require("avalara").new(opts) end

return M
