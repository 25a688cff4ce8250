-- Reserves every request or none, over sliding (or fixed) windows.
--
-- KEYS[1]       the id counter; then per request i: KEYS[2i] a sorted set of
--               charges (score = time in µs, member = "id:amount"), KEYS[2i+1]
--               the sum of that set.
-- ARGV[1]       now, in µs (a string: Lua's tostring would round it).
-- ARGV per request i, from ARGV[4i-2]: the cutoff (entries at or before it
--               no longer count; "(" makes it exclusive), the amount, the max,
--               and a ttl in ms after which the whole counter can go.
--
-- Returns {0, id} when reserved, {1, i, current} when request i would pass
-- its max (nothing is written then, beyond pruning what had expired).
local n = (#KEYS - 1) / 2
local planned = {}
for i = 1, n do
  local set, sum = KEYS[2 * i], KEYS[2 * i + 1]
  local cutoff = ARGV[4 * i - 2]
  local amount = tonumber(ARGV[4 * i - 1])
  local max = tonumber(ARGV[4 * i])
  local old = redis.call('ZRANGEBYSCORE', set, '-inf', cutoff)
  if #old > 0 then
    local gone = 0
    for _, m in ipairs(old) do
      gone = gone + tonumber(string.match(m, ':(%d+)$'))
    end
    redis.call('ZREMRANGEBYSCORE', set, '-inf', cutoff)
    if redis.call('DECRBY', sum, gone) <= 0 then
      redis.call('DEL', sum)
    end
  end
  local current = tonumber(redis.call('GET', sum) or '0') + (planned[set] or 0)
  if current + amount > max then
    return {1, i, current}
  end
  planned[set] = (planned[set] or 0) + amount
end
local id = redis.call('INCR', KEYS[1])
for i = 1, n do
  local set, sum = KEYS[2 * i], KEYS[2 * i + 1]
  local amount = ARGV[4 * i - 1]
  if tonumber(amount) > 0 then
    -- Repeated keys in one reservation share an id; the index keeps members apart.
    redis.call('ZADD', set, ARGV[1], id .. '.' .. i .. ':' .. amount)
    redis.call('INCRBY', sum, amount)
    redis.call('PEXPIRE', set, ARGV[4 * i + 1])
    redis.call('PEXPIRE', sum, ARGV[4 * i + 1])
  end
end
return {0, id}
