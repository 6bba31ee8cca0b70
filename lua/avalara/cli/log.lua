--- What `hscode` writes on stderr, in one place: `--quiet` (no progress, no
-- informational lines; warnings and errors still written), `--no-progress`
-- (no progress lines) and `--log-format json` (each line one JSON object,
-- `{"level":..., "event":..., "message":..., fields...}` in that key order).
--
-- The sink stands in for the stderr stream (`write`, `flush`): text a command
-- writes as it is is taken line by line ("hscode: warning: ..." a warning, the
-- rest informational); `emit` writes an event with its fields (progress, the
-- summary, an error).
-- @module avalara.cli.log
local json = require "avalara.cli.json"

local M = {}

local Sink = {}
Sink.__index = Sink

--- The log formats.
M.FORMATS = { text = true, json = true }

--- A sink writing to `stream`, in text, everything shown until `configure`.
-- @param stream a file (stderr)
-- @treturn table the sink
function M.new(stream)
  return setmetatable({ stream = stream, json = false, quiet = false, progress = true, partial = "" }, Sink)
end

--- Sets what is written: `{format = "text"|"json", quiet = bool, progress = bool}`.
-- @tparam table how
function Sink:configure(how)
  if how.format ~= nil then self.json = how.format == "json" end
  if how.quiet ~= nil then self.quiet = how.quiet end
  if how.progress ~= nil then self.progress = how.progress end
end

--- Whether an event of `level` (and `event`) is written.
-- @string level "error", "warning", "info" or "debug"
-- @tparam[opt] string event
-- @treturn boolean
function Sink:wants(level, event)
  if event == "progress" then return self.progress and not self.quiet end
  return not (self.quiet and level == "info")
end

--- The line of an event, as written: JSON (keys `level`, `event`, `message`, then the fields in
-- their order), or in text `text` (default "hscode: MESSAGE\n").
-- @string level
-- @tparam[opt] string event
-- @tparam[opt] string message
-- @tparam[opt] table fields a list of `{name, value}` (nil values left out)
-- @tparam[opt] string text
-- @treturn string
function Sink:render(level, event, message, fields, text)
  if not self.json then return text or ("hscode: " .. tostring(message) .. "\n") end
  local t, order = { level = level, event = event, message = message }, { "level", "event", "message" }
  for _, f in ipairs(fields or {}) do
    if f[2] ~= nil and t[f[1]] == nil then t[f[1]] = f[2]; order[#order + 1] = f[1] end
  end
  return json.encode(t, order) .. "\n"
end

--- Writes an event when it is wanted (`render`'s arguments).
function Sink:emit(level, event, message, fields, text)
  if not self:wants(level, event) then return end
  self:flush_partial()
  self.stream:write(self:render(level, event, message, fields, text))
end

-- One line written as text by a command.
function Sink:line(line)
  line = line:gsub("^.*\r", ""):gsub("\27%[K", "")
  if line:match("^%s*$") then
    if not self.json and not self.quiet then self.stream:write("\n") end
    return
  end
  local warning = line:match("^hscode: warning: (.*)$")
  local level = warning and "warning" or "info"
  if not self:wants(level) then return end
  if not self.json then return self.stream:write(line, "\n") end
  local message = warning or line:match("^hscode: (.*)$") or line
  self.stream:write(self:render(level, nil, message))
end

--- Text as a stream takes it: as it is in text without `--quiet`, else line by line.
function Sink:write(...)
  local n, parts = select("#", ...), { ... }
  for i = 1, n do parts[i] = tostring(parts[i]) end
  local text = table.concat(parts, "", 1, n)
  if not self.json and not self.quiet then
    self.stream:write(text)
    return self
  end
  text = self.partial .. text
  self.partial = ""
  local lines = {}
  for line, ends in text:gmatch("([^\n]*)(\n?)") do
    if ends == "" then self.partial = line; break end
    -- an indented line goes with the one before it (a command to run again)
    if line:match("^  %S") and #lines > 0 then lines[#lines] = lines[#lines] .. "\n" .. line
    else lines[#lines + 1] = line end
  end
  for _, line in ipairs(lines) do self:line(line) end
  return self
end

--- Writes a line left unfinished.
function Sink:flush_partial()
  if self.partial ~= "" then
    local line = self.partial
    self.partial = ""
    self:line(line)
  end
end

--- Flushes the stream.
function Sink:flush()
  return self.stream:flush()
end

--- Writes an event through `sys.stderr` (a sink), or its text to a plain stream.
-- @tparam table sys
-- @string level
-- @tparam[opt] string event
-- @tparam[opt] string message
-- @tparam[opt] table fields
-- @tparam[opt] string text
function M.emit(sys, level, event, message, fields, text)
  local s = sys.stderr
  if getmetatable(s) == Sink then return s:emit(level, event, message, fields, text) end
  s:write(text or ("hscode: " .. tostring(message) .. "\n"))
end

--- Whether `sys.stderr` takes events of `level` and `event` (a plain stream: all).
function M.wants(sys, level, event)
  local s = sys.stderr
  if getmetatable(s) == Sink then return s:wants(level, event) end
  return true
end

--- Whether `sys.stderr` writes JSON.
function M.is_json(sys)
  local s = sys.stderr
  return getmetatable(s) == Sink and s.json
end

return M
