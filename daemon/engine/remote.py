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
from ghostline.daemon.engine.types import Completion, CompletionRequest, CompletionResult, Job

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
        req = job.request
        self.counters["requests"] += 1
        client = self._http()
        built = self.builder.build(req, n_ctx=self.n_ctx)
        body = self._body(req, built.text)
        t0 = time.perf_counter()
        stream = _Stream(body["n"])
        res = CompletionResult([], model=self.name, source="remote", n_ctx=self.n_ctx, truncated=built.truncated)
        try:
            await self._stream(client, body, job, stream)
        except asyncio.CancelledError:
            job.cancel()
        except Exception as e:  # network errors become a result with an error, never a crash
            self.counters["errors"] += 1
            res.error = f"remote backend: {e}"
        t1 = time.perf_counter()
        res.completions = stream.completions(job.cancelled)
        res.cancelled = job.cancelled
        if job.cancelled:
            self.counters["cancelled"] += 1
        first_at = stream.first_at or t1
        res.prompt_ms = (first_at - t0) * 1e3
        res.predicted_ms = (t1 - first_at) * 1e3
        res.ttft_ms = (first_at - job.submitted_at) * 1e3
        job.finish(res)

    def _http(self) -> Any:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s, connect=5.0))
        return self._client

    def _body(self, req: CompletionRequest, prompt: str) -> dict[str, Any]:
        """The /v1/completions request: the FIM prompt as plain text, streamed."""
        body: dict[str, Any] = {
            "prompt": prompt,
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
        return body

    async def _stream(self, client: Any, body: dict[str, Any], job: Job, stream: _Stream) -> None:
        """Read the server's SSE reply into `stream` (streaming each piece to the job) until it ends, the job is
        cancelled, or every candidate reached the end of its line/block."""
        req = job.request
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        async with client.stream("POST", f"{self.base_url}/v1/completions", json=body, headers=headers) as resp:
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
                stream.take(json.loads(data), job)
                if (req.n_indent > 0 or req.stop_at_unit) and stream.cut_units(req):
                    break


class _Stream:
    """The candidates' text as it streams in, and how each one ended."""

    def __init__(self, n: int):
        self.texts = [""] * n
        self.finish = ["none"] * n
        self.first_at = 0.0

    def take(self, obj: dict[str, Any], job: Job) -> None:
        """One SSE chunk: append (and stream to the job) each choice's text."""
        for ch in obj.get("choices", []):
            i = int(ch.get("index", 0))
            if i >= len(self.texts):
                continue
            piece = ch.get("text") or ""
            if piece:
                if not self.first_at:
                    self.first_at = time.perf_counter()
                self.texts[i] += piece
                job.emit(i, piece)
            if ch.get("finish_reason"):
                self.finish[i] = "eos" if ch["finish_reason"] == "stop" else "limit"

    def cut_units(self, req: CompletionRequest) -> bool:
        """Cut each candidate at the end of its unit (n_indent, the line/block); True when all of them ended."""
        cur = req.prefix.rsplit("\n", 1)[-1]
        done = True
        for i, text in enumerate(self.texts):
            d = check_n_indent(text, req.n_indent)
            if not d.stop and req.stop_at_unit:
                d = check_unit(cur, text)
            if d.stop:
                self.texts[i] = text[: d.keep]
                self.finish[i] = "limit"
            else:
                done = False
        return done

    def completions(self, cancelled: bool) -> list[Completion]:
        return [Completion(t, [], "cancelled" if cancelled else f) for t, f in zip(self.texts, self.finish, strict=True)]
