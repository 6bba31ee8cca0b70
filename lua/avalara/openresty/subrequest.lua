--- @module avalara.openresty.subrequest moved to `avalara.transport.subrequest`; this name keeps working.
return require "avalara.transport.subrequest"
