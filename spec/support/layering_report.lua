-- Prints lua/avalara's layering report (and with --graph its dependency
-- graph, one module a line): the "before and after" of issue 22's closing note.
--
--   lua5.4 spec/support/layering_report.lua [--graph] [root]   (root: the repository, default .)
package.path = "./?.lua;" .. package.path
local L = require "spec.support.layering"

local graph_too, root = false, "."
for _, a in ipairs(arg) do
  if a == "--graph" then graph_too = true else root = a end
end
local report, graph = L.check(L.read_tree(root .. "/lua"))
if graph_too then print(L.graph_text(graph)) print() end
local text = L.format(report)
print(text ~= "" and text or "no violation")
