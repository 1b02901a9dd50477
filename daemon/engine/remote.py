"""A backend that forwards to an existing serving engine's OpenAI-compatible `/v1/completions` (vLLM, SGLang,
llama.cpp server, Ollama): Ghostline applies the FIM template and sends a plain prompt, streaming the reply.
This is the scale-out path: one GPU server for a team, the daemon on each laptop."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from ghostline.daemon.engine.fim import FimFormat, get_format
from ghostline.daemon.engine.prompt import PromptBuilder
from ghostline.daemon.engine.stopping import check_n_indent, check_unit
from ghostline.daemon.engine.types import Completion, CompletionResult, Job

log = logging.getLogger("ghostline.daemon.remote")


def _chars_as_tokens(text: str) -> list[int]:
    # No tokenizer for a remote model: count ~4 characters a token for context bounds.
    return [0] * (len(text) // 4 + 1)


class RemoteBackend:
    kind = "remote"

    def __init__(self, base_url: str, *, model: str = "", fim_format: str = "qwen", api_key: str = "",
                 n_ctx: int = 8192, timeout_s: float = 30.0):
        base = base_url.rstrip("/")
        if base.endswith("/v1/completions"):
            base = base[: -len("/v1/completions")]
        elif base.endswith("/v1"):
            base = base[:-3]
        self.base_url = base
        self.model = model
        self.fim: FimFormat = get_format(fim_format)
        self.api_key = api_key
        self.n_ctx = n_ctx
        self.timeout_s = timeout_s
        self.builder = PromptBuilder(self.fim, _chars_as_tokens)
        self._client: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.counters: dict[str, float] = {"requests": 0, "cancelled": 0, "errors": 0, "predicted_tokens": 0}
        self.cache = None
        self.busy = False

    @property
    def name(self) -> str:
        return self.model or self.base_url

    def start(self) -> None:
        pass

    def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()

    async def aclose(self) -> None:
        self.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def submit(self, job: Job) -> None:
        task = job.loop.create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Job) -> None:
        import httpx

        req = job.request
        self.counters["requests"] += 1
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s, connect=5.0))
        built = self.builder.build(req, n_ctx=self.n_ctx)
        body: dict[str, Any] = {
            "prompt": built.text,
            "max_tokens": req.n_predict if req.n_predict >= 0 else 256,
            "temperature": req.temperature,
            "stream": True,
            "n": max(1, req.n_cmpl) if req.temperature > 0 else 1,
        }
        if self.model:
            body["model"] = self.model
        if req.top_p < 1.0:
            body["top_p"] = req.top_p
        stops = [s for s in (*self.fim.stop_tokens, *req.stop) if s]
        if stops:
            body["stop"] = stops[:4] if "api.openai.com" in self.base_url else stops
        if req.top_k > 0:
            body["top_k"] = req.top_k  # vLLM/SGLang/llama.cpp accept it as an extra field
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        t0 = time.perf_counter()
        n = body["n"]
        texts = [""] * n
        finish = ["none"] * n
        res = CompletionResult([], model=self.name, source="remote", n_ctx=self.n_ctx, truncated=built.truncated)
        first_at = 0.0
        try:
            async with self._client.stream("POST", f"{self.base_url}/v1/completions", json=body,
                                           headers=headers) as resp:
                if resp.status_code != 200:
                    text = (await resp.aread()).decode("utf-8", "replace")[:200]
                    raise RuntimeError(f"remote server answered {resp.status_code}: {text}")
                async for line in resp.aiter_lines():
                    if job.cancelled:
                        break
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    obj = json.loads(data)
                    for ch in obj.get("choices", []):
                        i = int(ch.get("index", 0))
                        if i >= n:
                            continue
                        piece = ch.get("text") or ""
                        if piece:
                            if not first_at:
                                first_at = time.perf_counter()
                            texts[i] += piece
                            job.emit(i, piece)
                        if ch.get("finish_reason"):
                            finish[i] = "eos" if ch["finish_reason"] == "stop" else "limit"
                    if req.n_indent > 0 or req.stop_at_unit:
                        cur = req.prefix.rsplit("\n", 1)[-1]
                        done = True
                        for i in range(n):
                            d = check_n_indent(texts[i], req.n_indent)
                            if not d.stop and req.stop_at_unit:
                                d = check_unit(cur, texts[i])
                            if d.stop:
                                texts[i] = texts[i][: d.keep]
                                finish[i] = "limit"
                            else:
                                done = False
                        if done:
                            break
        except asyncio.CancelledError:
            job.cancel()
        except Exception as e:  # network errors become a result with an error, never a crash
            self.counters["errors"] += 1
            res.error = f"remote backend: {e}"
        t1 = time.perf_counter()
        res.completions = [Completion(t, [], "cancelled" if job.cancelled else f) for t, f in zip(texts, finish, strict=True)]
        res.cancelled = job.cancelled
        if job.cancelled:
            self.counters["cancelled"] += 1
        res.prompt_ms = ((first_at or t1) - t0) * 1e3
        res.predicted_ms = (t1 - (first_at or t1)) * 1e3
        res.ttft_ms = ((first_at or t1) - job.submitted_at) * 1e3
        job.finish(res)
