-- Gives back charges: per pair KEYS[2i-1] (set), KEYS[2i] (sum), ARGV[i] the
-- member. A member already gone (expired or refunded) gives nothing back.
for i = 1, #ARGV do
  local set, sum = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('ZREM', set, ARGV[i]) == 1 then
    local amount = tonumber(string.match(ARGV[i], ':(%d+)$'))
    if redis.call('DECRBY', sum, amount) <= 0 then
      redis.call('DEL', sum)
    end
  end
end
return 0
