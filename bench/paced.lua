-- The same POST, paced: each connection waits DELAY_MS between requests (1 connection, 20 ms = 50 req/s).
dofile(os.getenv("BENCH_DIR") .. "/post.lua")
local delay_ms = tonumber(os.getenv("DELAY_MS") or "20")
function delay() return delay_ms end
