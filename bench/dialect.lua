-- Chat Completions or Responses requests of one payload size, for comparing their cost per request.
-- DIALECT = chat | responses; SIZE = bytes of prompt text (the ~30-byte default matches post.lua's body).
local dialect = os.getenv("DIALECT") or "chat"
local size = tonumber(os.getenv("SIZE") or "0")
local text = "Hello, how are you today?"
if size > #text then
    local words = {}
    local n = 0
    while n < size do
        words[#words + 1] = "lorem ipsum dolor sit amet, consectetur adipiscing elit"
        n = n + 56
    end
    text = table.concat(words, " ")
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
if dialect == "responses" then
    wrk.path = "/v1/responses"
    wrk.body = '{"model":"gpt-4.1-mini","input":[{"role":"user","content":"' .. text .. '"}],"max_output_tokens":64}'
else
    wrk.path = "/v1/chat/completions"
    wrk.body = '{"model":"gpt-4.1-mini","messages":[{"role":"user","content":"' .. text .. '"}],"max_tokens":64}'
end
local key = os.getenv("QF_KEY")
if key and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
