"""Prompt assembly with truncation: fit the context window and the prefill time budget.

llama.cpp leaves `t_max_prompt_ms` as a TODO; here the budget is turned into a number of tokens that may be
computed (not reused from the KV cache) at the measured prefill rate, and context is dropped until the prompt
fits: extra chunks first (oldest first), then prefix lines from the top and suffix lines from the bottom.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ghostline.daemon.engine.fim import ExtraChunk, FimFormat
from ghostline.daemon.engine.types import CompletionRequest


@dataclass
class BuiltPrompt:
    tokens: list[int]
    text: str
    truncated: bool = False


class PromptBuilder:
    def __init__(self, fim: FimFormat, encode: Callable[[str], list[int]]):
        self.fim = fim
        self.encode = encode

    def text(self, req: CompletionRequest, extra: list[ExtraChunk] | None = None, prefix: str | None = None,
             suffix: str | None = None) -> str:
        return self.fim.build(
            req.prefix if prefix is None else prefix,
            req.suffix if suffix is None else suffix,
            req.extra if extra is None else extra,
            repo_name=req.repo_name,
            filename=req.filename,
        )

    def _candidates(self, req: CompletionRequest) -> Iterator[tuple[list[ExtraChunk], str, str]]:
        extra = list(req.extra)
        yield extra, req.prefix, req.suffix
        while extra:
            extra = extra[1:]
            yield extra, req.prefix, req.suffix
        head, sep, cur = req.prefix.rpartition("\n")
        pre_lines = head.split("\n") if sep else []
        suf_lines = req.suffix.split("\n")
        keep_p, keep_s = len(pre_lines), len(suf_lines)
        while keep_p > 0 or keep_s > 1:
            keep_p //= 2
            keep_s = max(1, keep_s // 2)
            kept = pre_lines[len(pre_lines) - keep_p :] if keep_p else []
            prefix = ("\n".join(kept) + "\n" if kept else "") + cur
            suffix = "\n".join(suf_lines[:keep_s])
            yield [], prefix, suffix

    def build(
        self,
        req: CompletionRequest,
        *,
        n_ctx: int,
        new_token_budget: int | None = None,
        reused: Callable[[list[int]], int] | None = None,
    ) -> BuiltPrompt:
        if req.raw_prompt is not None:
            toks = self.encode(req.raw_prompt)
            if len(toks) > n_ctx:
                return BuiltPrompt(toks[len(toks) - n_ctx :], req.raw_prompt, True)
            return BuiltPrompt(toks, req.raw_prompt, False)
        last: BuiltPrompt | None = None
        for i, (extra, prefix, suffix) in enumerate(self._candidates(req)):
            text = self.text(req, extra, prefix, suffix)
            toks = self.encode(text)
            last = BuiltPrompt(toks, text, i > 0)
            if len(toks) > n_ctx:
                continue
            if new_token_budget is not None:
                cached = reused(toks) if reused else 0
                if len(toks) - cached > new_token_budget:
                    continue
            return last
        assert last is not None
        if len(last.tokens) > n_ctx:  # even the cursor line alone is too long: keep its tail
            last = BuiltPrompt(last.tokens[len(last.tokens) - n_ctx :], last.text, True)
        return last
