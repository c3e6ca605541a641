-- A chat completion POST with the key from QF_KEY (empty when hitting the mock directly).
wrk.method = "POST"
wrk.body = '{"model":"gpt-4.1-mini","messages":[{"role":"user","content":"Hello, how are you today?"}],"max_tokens":64}'
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("QF_KEY")
if key and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
