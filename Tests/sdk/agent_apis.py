"""The official clients of the agents' APIs, unchanged except for base URL and key, against Quotaflow:
openai (Responses, embeddings), google-genai (the Gemini API) and anthropic (token counting, streaming
with thinking and 1-hour cache usage). Refusals must arrive as each client's own exception type.

Run by Tests/QuotaflowServerTests/SDKCompatibilityTests.swift with QF_BASE, QF_KEY and QF_BROKE_KEY set.
Exits non-zero on the first failed check.
"""
import os

import anthropic
import openai
from google import genai
from google.genai import errors as genai_errors

import checks
from checks import check

base = os.environ["QF_BASE"]
key = os.environ["QF_KEY"]
broke = os.environ["QF_BROKE_KEY"]



# OpenAI Responses: non-streaming, streaming, the stream helper, and the stored response.
oa = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
r = oa.responses.create(model="gpt-5.4", input="Hello", include=["reasoning.encrypted_content"])
check(r.id.startswith("resp_") and r.output_text.startswith("Hello"), f"responses.create: {r.output_text!r}")
check(r.usage.output_tokens_details.reasoning_tokens == 20 and r.usage.input_tokens_details.cached_tokens == 200, f"responses usage {r.usage}")
check(any(item.type == "reasoning" and item.encrypted_content for item in r.output), "encrypted reasoning comes back")
events = list(oa.responses.create(model="gpt-5.4", input="Hello", stream=True))
check(events[0].type == "response.created" and events[-1].type == "response.completed", f"stream events {[e.type for e in events][:3]}")
check(events[-1].response.usage.output_tokens == 70, "streamed usage")
with oa.responses.stream(model="gpt-5.4", input="Hello") as stream:
    for _ in stream:
        pass
    final = stream.get_final_response()
check(final.output_text.startswith("Hello"), "responses.stream final text")
follow = oa.responses.create(model="gpt-5.4", input="And again", previous_response_id=r.id)
check(follow.output_text.startswith("Hello"), "previous_response_id follows the stored response")
check(oa.responses.retrieve(r.id).id == r.id, "responses.retrieve")
oa.responses.delete(r.id)
try:
    oa.responses.retrieve(r.id)
    check(False, "a deleted response is gone")
except openai.NotFoundError:
    check(True, "deleted")
try:
    oa.responses.create(model="gpt-5.4", input="x", background=True)
    check(False, "background responses are refused")
except openai.BadRequestError as e:
    check(e.body.get("code") == "invalid_request" and "background" in e.body.get("message", ""), f"background refusal {e.body}")
try:
    oa.responses.retrieve("resp_someone_elses")
    check(False, "an unknown response id is refused")
except openai.NotFoundError as e:
    check(e.body.get("code") == "response_not_found", f"response_not_found {e.body}")
try:
    openai.OpenAI(base_url=base + "/v1", api_key=broke).responses.create(model="gpt-5.4", input="x")
    check(False, "an exhausted budget refuses responses")
except openai.RateLimitError as e:
    check(e.response.headers.get("x-should-retry") == "false", "responses quota refusal is final")

# OpenAI embeddings.
emb = oa.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
check(len(emb.data) == 2 and emb.usage.prompt_tokens == 1000, f"embeddings {emb.usage}")

# The Gemini API through google-genai.
gm = genai.Client(api_key=key, http_options={"base_url": base})
g = gm.models.generate_content(model="gemini-2.5-pro", contents="Hello")
check(g.text.startswith("Hello"), f"generate_content text {g.text!r}")
check(g.usage_metadata.thoughts_token_count == 20 and g.usage_metadata.cached_content_token_count == 200, f"gemini usage {g.usage_metadata}")
text = "".join(chunk.text or "" for chunk in gm.models.generate_content_stream(model="gemini-2.5-pro", contents="Hello"))
check(text.startswith("Hello"), f"generate_content_stream {text!r}")
count = gm.models.count_tokens(model="gemini-2.5-pro", contents="How many tokens is this?")
check(count.total_tokens > 0, "count_tokens")
for client, code, status in (
    (genai.Client(api_key="qf_pk_wrong", http_options={"base_url": base}), 401, "UNAUTHENTICATED"),
    (genai.Client(api_key=broke, http_options={"base_url": base}), 429, "RESOURCE_EXHAUSTED"),
):
    try:
        client.models.generate_content(model="gemini-2.5-pro", contents="x")
        check(False, f"gemini {status} should fail")
    except genai_errors.ClientError as e:
        check(e.code == code and e.status == status, f"gemini refusal {e.code} {e.status}")
try:
    gm.models.generate_content(model="gemini-2.5-flash", contents="x")
    check(False, "gemini: a model outside the list should fail")
except genai_errors.ClientError as e:
    check(e.code == 403 and e.status == "PERMISSION_DENIED", f"gemini model refusal {e.code}")

# Anthropic: token counting, and a stream with thinking and 1-hour cache writes.
an = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)
counted = an.messages.count_tokens(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "How many?"}])
check(counted.input_tokens > 0, "messages.count_tokens")
with an.messages.stream(
    model="claude-sonnet-4-6", max_tokens=256, thinking={"type": "enabled", "budget_tokens": 128},
    system=[{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
    messages=[{"role": "user", "content": "Hello"}],
) as stream:
    streamed = "".join(stream.text_stream)
    message = stream.get_final_message()
check(streamed.startswith("Hello"), "anthropic streamed text")
check(message.content[0].type == "thinking" and message.content[0].signature == "EqQBCgIYAhIM-simulated-signature", "thinking signature intact")
check(message.content[1].type == "redacted_thinking", "redacted thinking intact")
check(message.usage.cache_creation.ephemeral_1h_input_tokens == 200 and message.usage.cache_read_input_tokens == 200, f"cache usage {message.usage}")
try:
    anthropic.Anthropic(base_url=base, api_key="qf_pk_wrong", max_retries=0).messages.count_tokens(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "x"}])
    check(False, "count_tokens with a wrong key should fail")
except anthropic.AuthenticationError:
    check(True, "count_tokens authentication error")

print(f"ALL AGENT API CHECKS PASSED ({checks.count} checks)")
