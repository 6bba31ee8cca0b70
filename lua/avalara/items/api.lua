--- The Items API's endpoint for a client: AvaTax's REST API (`items_base`,
-- token scope `items_scope`), reached through the client itself when both
-- APIs share a base URL and scope, else through a client of the same
-- account made once with `client:derive`. One call, one list, one iterator.
-- @module avalara.items.api
local paths = require "avalara.paths"
local paging = require "avalara.paging"
local args = require "avalara.items.args"

local M = {}

-- client:call's opts: the response headers are not read here
local NO_HEADERS = { response_headers = false }

local apis = setmetatable({}, { __mode = "k" })

--- The client that makes `client`'s calls to the Items API: `client` itself
-- when both APIs share a base URL and scope, else a client of the same
-- account for `items_base` and `items_scope` (made once).
-- @param client an `avalara.Client`
-- @return an `avalara.Client`
function M.client(client)
  local c = apis[client]
  if c then return c end
  if client.items_base == client.api_base and client.items_scope == client.scope then
    c = client
  else
    c = client:derive { api_base = client.items_base, scope = client.items_scope }
  end
  apis[client] = c
  return c
end
local api = M.client

--- The URL of a route of the Items API (`avalara.paths` name and variables).
-- @param client
-- @string name
-- @tparam table vars
-- @treturn string
function M.url(client, name, vars)
  return api(client).api_base .. paths.build(name, vars)
end

--- One call on the Items API.
-- @param client an `avalara.Client`
-- @string method
-- @string name the route's name (`avalara.paths`)
-- @tparam table vars its variables
-- @param[opt] body
-- @string[opt] query
-- @return the decoded body, or nil, err
function M.call(client, method, name, vars, body, query)
  local c = api(client)
  local s, b = c:call(method, c.api_base .. paths.build(name, vars) .. (query or ""), body, NO_HEADERS)
  if s == nil then return nil, b end
  return b
end

--- One call whose answer is not needed.
-- @return true, or nil, err
function M.done(client, method, name, vars)
  local c = api(client)
  local s, err = c:call(method, c.api_base .. paths.build(name, vars), nil, NO_HEADERS)
  if s == nil then return nil, err end
  return true
end

--- A FetchResult list of the Items API, every page (raises naming `where`
-- on a bad list option).
-- @param client
-- @string where
-- @string name
-- @tparam table vars
-- @tparam[opt] table opts list options (`avalara.paging.query`)
-- @tparam[opt] table extra more options the list takes
-- @return records, count, or nil, err
function M.list(client, where, name, vars, opts, extra)
  local q, err = paging.query(opts, extra)
  if not q then args.fail(where, err, 3) end
  return paging.collect(api(client), M.url(client, name, vars) .. q, opts and opts.skip)
end

--- The same list as an iterator (`avalara.paging.each`).
-- @treturn function
function M.each(client, where, name, vars, opts, extra)
  local q, err = paging.query(opts, extra)
  if not q then args.fail(where, err, 3) end
  return paging.each(api(client), M.url(client, name, vars) .. q, opts and opts.skip)
end

return M
