"""One admitted job's decoding state: each candidate's tokens and text so far, the stop rules (stop strings,
n_indent, the end of the unit, the token and time limits), streaming what is settled, and the completions.

No torch here: the model side hands over the tokens it sampled; the KV state it keeps (`cache`, `static`) only
rides along.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ghostline.daemon.engine.model import StaticDecoder
from ghostline.daemon.engine.stopping import check_n_indent, check_stop_strings, check_unit
from ghostline.daemon.engine.types import Completion, CompletionRequest, CompletionResult, Job


@dataclass
class Decoding:
    job: Job
    req: CompletionRequest
    prompt: list[int]
    rows: int
    cache: Any  # DynamicCache, or None on the static path
    static: StaticDecoder | None
    next_tok: Any  # tensor [rows]: the tokens sampled last round, not taken yet
    gen: Any
    cursor_line: str
    t_start: float
    t_predict_start: float
    result: CompletionResult
    ids: list[list[int]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    emitted: list[int] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)
    stop_types: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    keep: list[int] = field(default_factory=list)
    n_steps: int = 0
    released: bool = False  # the worker let go of this cancelled job (it may still sit in the active list)

    @classmethod
    def start(cls, job: Job, result: CompletionResult, prompt: list[int], rows: int, cache: Any,
              static: StaticDecoder | None, first: Any, gen: Any, t_start: float, t_predict_start: float) -> Decoding:
        req = job.request
        cursor_line = (req.prefix if req.raw_prompt is None else req.raw_prompt).rsplit("\n", 1)[-1]
        return cls(
            job=job, req=req, prompt=prompt, rows=rows, cache=cache, static=static, next_tok=first, gen=gen,
            cursor_line=cursor_line, t_start=t_start, t_predict_start=t_predict_start, result=result,
            ids=[[] for _ in range(rows)], texts=["" for _ in range(rows)], emitted=[0] * rows,
            finished=[False] * rows, stop_types=["none"] * rows, words=[""] * rows, keep=[-1] * rows,
        )

    @property
    def kv_length(self) -> int:
        """The KV state's length before the next decode forward: the prompt and every generated token fed back
        (all but the one sampled last)."""
        return len(self.prompt) + self.n_steps - 1

    @property
    def batchable(self) -> bool:
        """A single candidate on the dynamic cache: it can share a batched decode forward with other jobs."""
        return self.static is None and self.rows == 1

    def take(self, tokens: list[int], stop_ids: set[int], decode: Callable[[list[int]], str], n_predict: int,
             n_ctx: int) -> bool:
        """Take the tokens sampled last round: stop rules, streaming. True when every candidate is finished (or
        the context window is full)."""
        now = time.perf_counter()
        for i in range(self.rows):
            if self.finished[i]:
                continue
            t = int(tokens[i])
            if t in stop_ids:
                self.finished[i] = True
                self.stop_types[i] = "eos"
                continue
            self.ids[i].append(t)
            text = decode(self.ids[i])
            self.texts[i] = text
            if self._stops(i, text, now, n_predict):
                self.finished[i] = True
            self.emit(i)
        self.n_steps += 1
        if all(self.finished) or len(self.prompt) + self.n_steps >= n_ctx - 1:
            for i in range(self.rows):
                if not self.finished[i]:
                    self.finished[i] = True
                    self.stop_types[i] = "limit"
                    self.emit(i)
            return True
        return False

    def _stops(self, i: int, text: str, now: float, n_predict: int) -> bool:
        req = self.req
        d = check_stop_strings(text, req.stop)
        if not d.stop and req.n_indent > 0:
            d = check_n_indent(text, req.n_indent)
        if not d.stop and req.stop_at_unit:
            d = check_unit(self.cursor_line, text)
        if d.stop:
            self.keep[i] = d.keep
            self.stop_types[i] = d.stop_type
            self.words[i] = d.word
            return True
        if len(self.ids[i]) >= n_predict:
            self.stop_types[i] = "limit"
            return True
        if req.t_max_predict_ms > 0 and "\n" in text and (now - self.t_predict_start) * 1e3 > req.t_max_predict_ms:
            self.stop_types[i] = "limit"
            return True
        return False

    def _kept(self, i: int) -> int:
        return self.keep[i] if self.keep[i] >= 0 else len(self.texts[i])

    def emit(self, i: int) -> None:
        """Stream candidate i's text that is settled."""
        text = self.texts[i][: self._kept(i)]
        if not self.finished[i]:
            # hold back an incomplete UTF-8 sequence and a possible partial stop string
            if text.endswith("\ufffd"):
                return
            hold = max((len(s) - 1 for s in self.req.stop if s), default=0)
            text = text[: max(self.emitted[i], len(text) - hold)]
        if len(text) > self.emitted[i]:
            self.job.emit(i, text[self.emitted[i] :])
            self.emitted[i] = len(text)

    def completions(self, stop_type: str | None = None) -> list[Completion]:
        """The candidates as they stand, each with its own stop reason (or all with `stop_type`)."""
        if stop_type is not None:
            return [Completion(self.texts[i][: self._kept(i)], self.ids[i], stop_type) for i in range(self.rows)]
        return [Completion(self.texts[i][: self._kept(i)], self.ids[i], self.stop_types[i], self.words[i])
                for i in range(self.rows)]

    def kv_tokens(self, generated: bool) -> list[int]:
        """The tokens the KV state covers: the prompt, plus (`generated`) the first candidate's tokens that were
        fed back -- all but the one sampled last; fewer when that candidate stopped early."""
        fed = max(0, self.n_steps - 1) if generated else 0
        return list(self.prompt) + (self.ids[0][:fed] if self.rows >= 1 else [])
