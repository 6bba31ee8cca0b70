--- The queues of the batch pipeline (`avalara.batch.pipeline`): a FIFO with
-- a front door (retries, renewals and lookups go first) and a binary heap of
-- timed steps (polls and retries due later, the earliest first).
-- @module avalara.batch.queue
local M = {}

-- ---------------------------------------------------------------- fifo

local Fifo = {}
Fifo.__index = Fifo

--- An empty FIFO.
-- @treturn table `push(rec)`, `front(rec)`, `pop() -> rec | nil`, `empty()`, `size()`; `head`..`tail` its entries
function M.fifo()
  return setmetatable({ head = 1, tail = 0 }, Fifo)
end

--- Adds `rec` at the back.
function Fifo:push(rec) self.tail = self.tail + 1; self[self.tail] = rec end
--- Adds `rec` at the front (it goes next).
function Fifo:front(rec) self.head = self.head - 1; self[self.head] = rec end
--- Takes the first entry, or nil.
function Fifo:pop()
  if self.head > self.tail then return nil end
  local rec = self[self.head]
  self[self.head] = nil
  self.head = self.head + 1
  return rec
end
--- Whether it is empty.
function Fifo:empty() return self.head > self.tail end
--- How many entries it holds.
function Fifo:size() return self.tail - self.head + 1 end

-- ---------------------------------------------------------------- heap

local Heap = {}
Heap.__index = Heap

--- An empty heap of `{at, rec}`.
-- @treturn table `push(at, rec)`, `peek() -> at | nil`, `pop() -> rec`; `n` its size
function M.heap()
  return setmetatable({ n = 0 }, Heap)
end

--- Adds `rec`, due at `at`.
function Heap:push(at, rec)
  self.n = self.n + 1
  local i = self.n
  self[i] = { at, rec }
  while i > 1 do
    local p = math.floor(i / 2)
    if self[p][1] <= self[i][1] then break end
    self[p], self[i] = self[i], self[p]
    i = p
  end
end

--- When the earliest entry is due, or nil when it is empty.
function Heap:peek() return self[1] and self[1][1] end

--- Takes the earliest entry.
function Heap:pop()
  local top = self[1]
  self[1], self[self.n] = self[self.n], nil
  self.n = self.n - 1
  local i = 1
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= self.n and self[l][1] < self[m][1] then m = l end
    if r <= self.n and self[r][1] < self[m][1] then m = r end
    if m == i then break end
    self[m], self[i] = self[i], self[m]
    i = m
  end
  return top[2]
end

return M
