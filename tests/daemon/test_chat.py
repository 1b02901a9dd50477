"""/v1/chat/completions on the local model, through the openai SDK: the model's chat template, streaming, the
credential scanner on the answer, and one-line errors where there is no chat."""

from __future__ import annotations

import openai
import pytest

from ghostline.daemon.engine.classical import ClassicalCompleter
from ghostline.daemon.engine.service import Engine
from ghostline.daemon.server.app import bound_port, create_app, start_server
from tests.support.scripted import ScriptedBackend

TOKEN = "chat-token"
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")


async def _serve(engine):
    runner = await start_server(create_app(engine, token=TOKEN), "127.0.0.1", 0)
    return runner, f"http://127.0.0.1:{bound_port(runner)}/v1"


@pytest.fixture
def templated(tiny_lm):
    old = getattr(tiny_lm.tokenizer, "chat_template", None)
    tiny_lm.tokenizer.chat_template = TEMPLATE
    yield tiny_lm
    tiny_lm.tokenizer.chat_template = old


async def test_chat_uses_the_model_template_and_streams(backend, templated):
    eng = Engine(backend)
    seen = []
    real = eng.submit
    eng.submit = lambda req: seen.append(req) or real(req)  # type: ignore[method-assign]
    runner, url = await _serve(eng)
    try:
        client = openai.AsyncOpenAI(base_url=url, api_key=TOKEN, max_retries=0)
        msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}]
        r = await client.chat.completions.create(model="local", messages=msgs, max_tokens=6)
        assert r.object == "chat.completion" and r.choices[0].message.role == "assistant"
        assert r.choices[0].finish_reason in ("stop", "length") and r.usage.completion_tokens <= 6
        assert seen[0].raw_prompt == "<|system|>Be brief.\n<|user|>Say hi\n<|assistant|>"
        stream = await client.chat.completions.create(model="local", messages=msgs, max_tokens=6, stream=True)
        chunks = [c async for c in stream]
        assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        assert text == r.choices[0].message.content  # greedy: the same answer either way
    finally:
        await runner.cleanup()


async def test_chat_answers_pass_the_credential_scanner():
    key = "ghp_" + "Q7w" * 12
    be = ScriptedBackend(["Use this: ", key, " and go"])
    be.chat_prompt = lambda messages: ("chat: " + messages[-1]["content"], ["</s>"])  # type: ignore[attr-defined]
    runner, url = await _serve(Engine(be))
    try:
        client = openai.AsyncOpenAI(base_url=url, api_key=TOKEN, max_retries=0)
        r = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "token?"}])
        assert "ghp_" not in r.choices[0].message.content
    finally:
        await runner.cleanup()


async def test_no_chat_without_a_local_model_and_no_tools():
    runner, url = await _serve(Engine(None, ClassicalCompleter()))
    try:
        client = openai.AsyncOpenAI(base_url=url, api_key=TOKEN, max_retries=0)
        with pytest.raises(openai.BadRequestError, match="chat needs a local model"):
            await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.BadRequestError, match="ReAct"):
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}],
                tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])
    finally:
        await runner.cleanup()
