"""The official OpenAI and Anthropic SDKs, unchanged except for base URL and key, against Quotaflow.

Run by Tests/QuotaflowServerTests/SDKCompatibilityTests.swift with QF_BASE, QF_KEY, QF_LIMITED_KEY set.
Exits non-zero on the first failed check.
"""
import os

import anthropic
import openai

import checks
from checks import check

base = os.environ["QF_BASE"]
key = os.environ["QF_KEY"]
limited = os.environ["QF_LIMITED_KEY"]


oa = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
an = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)

# OpenAI, non-streaming.
r = oa.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "Hello"}], max_tokens=32)
check(r.choices[0].message.content.startswith("Hello"), "openai non-streaming content")
check(r.usage.total_tokens > 0, "openai usage")

# OpenAI, streaming (we ask upstream for usage; the client did not, so no usage-only chunk arrives).
chunks = list(oa.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "Hello"}], stream=True))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check(text.startswith("Hello"), "openai streaming content")
check(all(c.choices for c in chunks), "no usage-only chunk the client did not ask for")

# OpenAI, streaming with usage requested by the client.
chunks = list(oa.chat.completions.create(
    model="gpt-4.1-mini", messages=[{"role": "user", "content": "Hello"}], stream=True, stream_options={"include_usage": True}))
check(chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0, "openai streaming usage when asked")

# Models.
ids = [m.id for m in oa.models.list()]
check("gpt-4.1-mini" in ids and "claude-haiku-4-5" not in ids, f"openai models list {ids}")
ids = [m.id for m in an.models.list()]
check("claude-haiku-4-5" in ids and "gpt-4.1-mini" not in ids, f"anthropic models list {ids}")

# Anthropic, non-streaming and streaming.
m = an.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hello"}])
check(m.content[0].text.startswith("Hello"), "anthropic non-streaming content")
check(m.usage.input_tokens > 0 and m.usage.output_tokens > 0, "anthropic usage")
with an.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hello"}]) as stream:
    streamed = "".join(stream.text_stream)
    final = stream.get_final_message()
check(streamed.startswith("Hello"), "anthropic streaming content")
check(final.usage.output_tokens > 0, "anthropic streaming usage")

# Refusals arrive as each SDK's own exceptions.
lo = openai.OpenAI(base_url=base + "/v1", api_key=limited, max_retries=0)
lo.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "one"}])
try:
    lo.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "two"}])
    check(False, "second request over the rate limit should fail")
except openai.RateLimitError as e:
    check(e.status_code == 429, "429 status")
    check(e.body.get("code") == "rate_limited", f"reason code in the body: {e.body}")
    check(e.response.headers.get("retry-after") is not None, "Retry-After header")

la = anthropic.Anthropic(base_url=base, api_key=limited, max_retries=0)
try:
    la.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "three"}])
    check(False, "anthropic request over the rate limit should fail")
except anthropic.RateLimitError as e:
    check(e.status_code == 429, "anthropic 429")

for client, exc in ((openai.OpenAI(base_url=base + "/v1", api_key="qf_pk_wrong", max_retries=0), openai.AuthenticationError),):
    try:
        client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "x"}])
        check(False, "a wrong key should fail")
    except exc as e:
        check("qf_pk_wrong" not in str(e), "the key is not echoed")
try:
    anthropic.Anthropic(base_url=base, api_key="qf_pk_wrong", max_retries=0).messages.create(
        model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    check(False, "a wrong key should fail (anthropic)")
except anthropic.AuthenticationError:
    check(True, "anthropic authentication error")

try:
    oa.chat.completions.create(model="gpt-5.4-pro", messages=[{"role": "user", "content": "x"}])
    check(False, "a model outside the list should fail")
except openai.PermissionDeniedError as e:
    check(e.body.get("code") == "model_not_allowed", "model_not_allowed code")

# Refusals a retry cannot fix reach default clients (retries on) at once: they carry x-should-retry:
# false, and a quota refusal has no Retry-After for the SDK to sleep on.
broke = os.environ["QF_BROKE_KEY"]
import time
for name, call, exc in (
    ("openai", lambda: openai.OpenAI(base_url=base + "/v1", api_key=broke).chat.completions.create(
        model="gpt-4.1-mini", max_tokens=64, messages=[{"role": "user", "content": "x"}]), openai.RateLimitError),
    ("anthropic", lambda: anthropic.Anthropic(base_url=base, api_key=broke).messages.create(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "x"}]), anthropic.RateLimitError),
):
    started = time.monotonic()
    try:
        call()
        check(False, f"{name}: an exhausted budget should fail")
    except exc as e:
        elapsed = time.monotonic() - started
        check(elapsed < 2.0, f"{name}: the quota refusal came at once with default retries ({elapsed:.2f} s)")
        check(e.response.headers.get("x-should-retry") == "false", f"{name}: x-should-retry false")
        check(e.response.headers.get("retry-after") is None, f"{name}: no Retry-After on a quota refusal")
        check(e.response.headers.get("x-quotaflow-budget-resets-at") is not None, f"{name}: the reset time is given")
for name, call, exc in (
    ("openai", lambda: openai.OpenAI(base_url=base + "/v1", api_key="qf_pk_wrong").models.list(), openai.AuthenticationError),
    ("anthropic", lambda: anthropic.Anthropic(base_url=base, api_key=broke).messages.create(
        model="gpt-5.4-pro", max_tokens=8, messages=[{"role": "user", "content": "x"}]), anthropic.PermissionDeniedError),
):
    started = time.monotonic()
    try:
        call()
        check(False, f"{name}: should fail")
    except exc:
        check(time.monotonic() - started < 2.0, f"{name}: refused at once with default retries")

print(f"ALL SDK CHECKS PASSED ({checks.count} checks)")
