-- GCRA over several budgets in one round trip: the arithmetic of
-- throttled/v2's GCRARateLimiterCtx.RateLimitCtx, on its stored state (the
-- theoretical arrival time, TAT, as decimal Unix nanoseconds), so that this
-- script, the in-process store and servers of older versions sharing the Redis
-- agree on every budget.
--
-- KEYS[i]: the stored key of budget i.
-- ARGV[1]: "take" (take one request from each budget in order, stopping at the
--          first that refuses: the budgets before it keep what was taken, the
--          ones after it are not looked at) or "peek" (report each, write
--          nothing).
-- ARGV[2i], ARGV[2i+1]: budget i's emission interval and delay variation
--          tolerance (Limit × emission interval), in nanoseconds.
--
-- Returns four integers per budget looked at: allowed (1 or 0), remaining,
-- reset and retry-after (nanoseconds; retry-after 0 when allowed).
--
-- Lua numbers are doubles, exact up to 2^53; Unix nanoseconds (about 1.8e18)
-- are not. So times are kept as whole seconds and nanoseconds, and the
-- arithmetic is done on offsets from now, which are exact for windows up to
-- 104 days.

-- Redis before 5 refuses writes after TIME unless effects are replicated;
-- from 5 on this is the default (and from 7 a no-op).
if redis.replicate_commands then
  redis.replicate_commands()
end

local BILLION = 1000000000

-- floordiv is floor(a / b) for integers, exact where a / b in doubles may
-- round up to the next integer.
local function floordiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

local t = redis.call('TIME')
local now_s = tonumber(t[1])
local now_ns = tonumber(t[2]) * 1000

-- ahead returns how far a stored TAT lies after now, in nanoseconds
-- (negative when it is past), or nil for a missing or unreadable value.
local function ahead(v)
  if not v or not string.find(v, '^%d+$') then
    return nil
  end
  local n = string.len(v)
  local s, ns = 0, tonumber(v)
  if n > 9 then
    s = tonumber(string.sub(v, 1, n - 9))
    ns = tonumber(string.sub(v, n - 8))
  end
  return (s - now_s) * BILLION + (ns - now_ns)
end

-- remaining is the library's count of requests left when the budget's
-- TAT lies ttl after now: trunc((dvt - ttl) / T), 0 once dvt - ttl <= -T.
local function remaining(ttl, T, dvt)
  local next = dvt - ttl
  if next <= 0 then
    return 0
  end
  return floordiv(next, T)
end

local take = ARGV[1] == 'take'
local out = {}
for i, key in ipairs(KEYS) do
  local T = tonumber(ARGV[2 * i])
  local dvt = tonumber(ARGV[2 * i + 1])
  local a = ahead(redis.call('GET', key))
  if a == nil then
    a = 0 -- a missing key is a TAT of now: a full budget
  end
  local base = math.max(a, 0)
  -- After one more request the TAT would be newAhead after now; the
  -- request is allowed when that stays within the tolerance.
  local newAhead = base + T
  local allowed = newAhead <= dvt
  local retry = 0
  if not allowed then
    retry = newAhead - dvt
  end
  local ttl
  if not take then
    ttl = base
  elseif allowed then
    ttl = newAhead
    local total = now_ns + newAhead
    local carry = floordiv(total, BILLION)
    local tat = string.format('%d%09d', now_s + carry, total - carry * BILLION)
    -- The key lives until its budget is full again, plus a second.
    redis.call('SET', key, tat, 'PX', floordiv(newAhead + BILLION, 1000000))
  else
    ttl = a
  end
  out[#out + 1] = allowed and 1 or 0
  out[#out + 1] = remaining(ttl, T, dvt)
  out[#out + 1] = ttl
  out[#out + 1] = retry
  if take and not allowed then
    break
  end
end
return out
