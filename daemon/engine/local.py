"""The in-process model: load a Hugging Face causal LM from a local path and serve FIM requests from one worker
thread that owns it (prefix-cache reuse, chunked prefill, per-step cancellation, time bounds, streaming).

torch and transformers are imported inside functions only: importing this module stays cheap.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ghostline.daemon.engine.fim import FimFormat, detect_format, get_format
from ghostline.daemon.engine.kvcache import KV, PrefixCache
from ghostline.daemon.engine.prompt import PromptBuilder
from ghostline.daemon.engine.stopping import check_n_indent, check_stop_strings, check_unit
from ghostline.daemon.engine.types import Completion, CompletionRequest, CompletionResult, Job

log = logging.getLogger("ghostline.daemon.engine")


class ModelLoadError(Exception):
    """The checkpoint at the given path cannot be loaded (message says why, in one line)."""


class _ForwardAborted(Exception):
    """Raised by the decoder-layer pre-hook: every row of the forward pass in flight belongs to a cancelled job."""


def decoder_layers(model: Any) -> list[Any]:
    """The model's stack of decoder blocks: `get_decoder().layers` where the model has one (Llama, Qwen2,
    StarCoder2, ...), else the longest `nn.ModuleList` in the module tree."""
    import torch

    try:
        layers = getattr(model.get_decoder(), "layers", None)
    except Exception:
        layers = None
    if isinstance(layers, torch.nn.ModuleList) and len(layers) > 0:
        return list(layers)
    best: Any = None
    for m in model.modules():
        if isinstance(m, torch.nn.ModuleList) and len(m) > 0 and (best is None or len(m) > len(best)):
            best = m
    return list(best) if best is not None else []


def truncate_cache(cache: Any, n: int) -> None:
    """Cut every layer of a DynamicCache back to its first `n` positions. After a forward aborted between
    layers, the layers it ran through grew and the others did not; this makes them all equal again."""
    for layer in cache.layers:
        if getattr(layer, "is_initialized", False) and layer.keys is not None and layer.keys.shape[-2] > n:
            layer.keys = layer.keys[..., :n, :]
            layer.values = layer.values[..., :n, :]


@dataclass
class LocalModel:
    model: Any
    tokenizer: Any
    name: str
    device: str
    dtype: str
    fim: FimFormat
    n_ctx: int
    stop_ids: set[int] = field(default_factory=set)
    bos_id: int | None = None
    n_params: int = 0

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        device: str | None = None,
        dtype: str | None = None,
        fim_format: str | None = None,
        n_ctx: int | None = None,
    ) -> LocalModel:
        p = Path(path).expanduser()
        if not p.is_dir() or not (p / "config.json").is_file():
            raise ModelLoadError(f"no Hugging Face checkpoint at {p} (expected a directory with config.json)")
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ModelLoadError(f"the local model needs torch and transformers ({e}); pip install 'ghostline[ml]'") from e
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype is None:
            if device.startswith("cuda"):
                dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
            else:
                dtype = "float32"
        torch_dtype = getattr(torch, dtype)
        try:
            tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(str(p), dtype=torch_dtype, local_files_only=True)
        except Exception as e:
            raise ModelLoadError(f"cannot load the model at {p}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
        model.to(device)
        model.eval()
        vocab = set(tok.get_vocab().keys())
        fim = get_format(fim_format) if fim_format else detect_format(
            getattr(model.config, "model_type", ""), str(p.name), vocab, prefer_suffix_first=True
        )
        stop_ids: set[int] = set()
        for t in (tok.eos_token_id,):
            if isinstance(t, int):
                stop_ids.add(t)
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        for t in gen_eos if isinstance(gen_eos, list) else [gen_eos]:
            if isinstance(t, int):
                stop_ids.add(t)
        for s in fim.stop_tokens:
            if s in vocab:
                stop_ids.add(tok.convert_tokens_to_ids(s))
        ctx = n_ctx or int(getattr(model.config, "max_position_embeddings", 4096) or 4096)
        n_params = sum(x.numel() for x in model.parameters())
        add_bos = bool(getattr(tok, "add_bos_token", False)) and tok.bos_token_id is not None
        return cls(
            model=model, tokenizer=tok, name=p.name, device=device, dtype=dtype, fim=fim, n_ctx=ctx,
            stop_ids=stop_ids, bos_id=tok.bos_token_id if add_bos else None, n_params=n_params,
        )

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if self.bos_id is not None:
            ids = [self.bos_id, *ids]
        return ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    @property
    def vocab_size(self) -> int:
        return int(self.model.config.vocab_size)


# --------------------------------------------------------------------------------------------------------------
# sampling


def sample(logits: Any, req: CompletionRequest, gen: Any, rank: int = 0) -> Any:
    """Next tokens for a batch of logits [B, V]. Greedy when temperature <= 0 (rank > 0 picks the rank-th best
    token instead, for distinct greedy candidates); else temperature, top_k, top_p, multinomial."""
    import torch

    if req.temperature <= 0:
        if rank > 0:
            return torch.topk(logits, rank + 1, dim=-1).indices[:, rank]
        return torch.argmax(logits, dim=-1)
    x = logits.float() / max(req.temperature, 1e-5)
    if req.top_k and req.top_k > 0 and req.top_k < x.shape[-1]:
        kth = torch.topk(x, req.top_k, dim=-1).values[:, -1:]
        x = x.masked_fill(x < kth, float("-inf"))
    if 0 < req.top_p < 1.0:
        sorted_x, idx = torch.sort(x, descending=True, dim=-1)
        probs = torch.softmax(sorted_x, dim=-1)
        cum = probs.cumsum(dim=-1)
        remove = cum - probs > req.top_p
        sorted_x = sorted_x.masked_fill(remove, float("-inf"))
        x = torch.full_like(x, float("-inf")).scatter(-1, idx, sorted_x)
    probs = torch.softmax(x, dim=-1)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


# --------------------------------------------------------------------------------------------------------------
# the GPU fast path: a static KV cache and a compiled single-token decode step (CUDA graphs via torch.compile)


class StaticDecoder:
    """Batch-1 decoding into a preallocated StaticCache. With `compile=True` the one-token step is compiled with
    torch.compile(mode="reduce-overhead"), which captures it as a CUDA graph; prefill runs eagerly. Without
    compile (CPU) the same code path runs eagerly, which is how it is tested without a GPU."""

    def __init__(self, lm: LocalModel, max_len: int, compile: bool):
        import torch
        from transformers import StaticCache

        self.lm = lm
        self.max_len = max_len
        self.cache = StaticCache(config=lm.model.config, max_cache_len=max_len)
        cfg = lm.model.config
        n_kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.cache.early_initialization(1, n_kv, head_dim, getattr(torch, lm.dtype), torch.device(lm.device))
        self.compiled = compile
        self._step = self._decode_eager
        if compile:
            self._step = torch.compile(self._decode_eager, mode="reduce-overhead")
        self.length = 0

    def _decode_eager(self, input_ids: Any, position_ids: Any) -> Any:
        out = self.lm.model(input_ids=input_ids, position_ids=position_ids, past_key_values=self.cache, use_cache=True)
        return out.logits[:, -1, :]

    def load_prefix(self, kv: KV | None, n: int) -> None:
        for layer in self.cache.layers:
            layer.cumulative_length.fill_(0)
        if kv is not None and n > 0:
            for layer, (k, v) in zip(self.cache.layers, kv, strict=True):
                layer.keys[:, :, :n, :].copy_(k[:, :, :n, :])
                layer.values[:, :, :n, :].copy_(v[:, :, :n, :])
                layer.cumulative_length.fill_(n)
        self.length = n

    def prefill(self, ids: list[int]) -> Any:
        import torch

        t = torch.tensor([ids], device=self.lm.device)
        pos = torch.arange(self.length, self.length + len(ids), device=self.lm.device).unsqueeze(0)
        out = self.lm.model(input_ids=t, position_ids=pos, past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        self.length += len(ids)
        return out.logits[:, -1, :]

    def decode(self, token: Any) -> Any:
        import torch

        pos = torch.tensor([[self.length]], device=self.lm.device)
        logits = self._step(token.view(1, 1), pos)
        self.length += 1
        return logits.clone() if self.compiled else logits

    def export(self, n: int) -> KV:
        return [(layer.keys[:, :, :n, :].clone(), layer.values[:, :, :n, :].clone()) for layer in self.cache.layers]


# --------------------------------------------------------------------------------------------------------------
# the worker


@dataclass
class _Active:
    job: Job
    req: CompletionRequest
    prompt: list[int]
    rows: int
    cache: Any  # DynamicCache, or None on the static path
    static: StaticDecoder | None
    next_tok: Any  # tensor [rows]
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


class LocalBackend:
    """One worker thread owns the model. `submit(job)` is thread-safe; the worker admits queued jobs (prefill,
    in chunks, checking for cancellation between chunks) and then advances every active job by one token per
    round, checking for cancellation between decode steps. On the dynamic-cache path a forward is also abortable
    between decoder layers: once every row it computes belongs to a cancelled job, a pre-hook on the next layer
    raises, the KV cache is cut back to its length before that forward, and the jobs are dropped (a batched
    decode with any live row always completes). The static-cache GPU path (and its compiled decode step) keeps
    the step-boundary check only: its steps are short and a CUDA graph cannot stop halfway."""

    kind = "local"

    def __init__(
        self,
        lm: LocalModel,
        *,
        cache: PrefixCache | None = None,
        kv_reuse: bool = True,
        prefill_chunk: int = 1024,
        fast_path: bool | None = None,
        max_active: int = 8,
        batch_decode: bool = True,
        static_max_len: int = 8192,
        cpu_threads: int | None = None,
    ):
        import torch

        if not lm.device.startswith("cuda"):
            # On CPU, torch's default (one thread per core) leaves no core for the server and the worker's own
            # Python, and its threads' barriers stall whenever another process takes a core: keep one core free.
            # Measured by bench/daemon_bench.py on 2 busy cores: p50 TTFT 5.3 s with 2 threads, 10 ms with 1.
            if cpu_threads is None:
                cpu_threads = max(1, min(8, (os.cpu_count() or 2) - 1))
            if cpu_threads > 0:
                torch.set_num_threads(cpu_threads)

        self.lm = lm
        self.cache = cache if cache is not None else PrefixCache()
        self.kv_reuse = kv_reuse
        self.prefill_chunk = prefill_chunk
        self.max_active = max_active
        self.batch_decode = batch_decode
        # decode attention on a static cache spans its whole length: keep it no longer than typical prompts
        self.static_max_len = min(lm.n_ctx, static_max_len)
        self.builder = PromptBuilder(lm.fim, lm.encode)
        on_cuda = lm.device.startswith("cuda") and torch.cuda.is_available()
        self.fast_path = on_cuda if fast_path is None else fast_path
        self._static: StaticDecoder | None = None
        self._static_compile = on_cuda
        self._q: queue.Queue[Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.prefill_ms_per_token = 0.0  # marginal cost of a prompt token (measured, then an EMA)
        self.prefill_overhead_ms = 0.0  # fixed cost of one forward call (measured at warm-up)
        self.decode_ms_per_token = 0.0
        self.counters: dict[str, float] = {
            "requests": 0, "cancelled": 0, "prompt_tokens": 0, "prompt_tokens_reused": 0, "predicted_tokens": 0,
            "truncated": 0, "errors": 0,
        }
        self.busy = False
        # Abortable forwards (dynamic-cache path): while a forward runs, `_fwd_jobs` names the jobs whose rows it
        # computes; a pre-hook on every decoder layer raises _ForwardAborted once all of them are cancelled (a
        # batched decode: once any is; the others redo their step), so a cancelled job stops costing compute
        # within one layer instead of after the whole forward.
        self._fwd_jobs: tuple[Job, ...] | None = None
        self._fwd_abort_on_any = False
        self._hook_handles: list[Any] = []
        self._waiting: tuple[list[Job], list[Job]] | None = None  # the worker's (pending, new) lists
        self._active: list[_Active] = []  # the worker's admitted jobs

    # -- lifecycle --
    @property
    def name(self) -> str:
        return self.lm.name

    @property
    def n_ctx(self) -> int:
        return self.lm.n_ctx

    def start(self, warmup: bool = True) -> None:
        """Start the worker thread. With `warmup`, the worker first measures prefill/decode speed and (on the
        GPU fast path) compiles and captures the decode step -- in its own thread, where it will replay it;
        this returns when the worker is ready."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._install_abort_hooks()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(warmup, ready), name="ghostline-model", daemon=True)
        self._thread.start()
        ready.wait()

    def stop(self) -> None:
        self._stop.set()
        self._q.put(None)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        for h in self._hook_handles:
            h.remove()
        self._hook_handles = []

    def _install_abort_hooks(self) -> None:
        import torch

        if self._hook_handles:
            return
        is_compiling = torch.compiler.is_compiling

        def check(_module: Any, _args: Any) -> None:
            # a constant under torch.compile: the compiled static-cache decode step carries no check
            if is_compiling():
                return
            jobs = self._fwd_jobs
            if not jobs:
                return
            self._let_go_idle(jobs)
            if self._fwd_abort_on_any:
                if any(j.cancel_event.is_set() for j in jobs):
                    raise _ForwardAborted
                return
            for j in jobs:
                if not j.cancel_event.is_set():
                    return
            raise _ForwardAborted

        self._hook_handles = [layer.register_forward_pre_hook(check) for layer in decoder_layers(self.lm.model)]

    def _let_go_idle(self, in_forward: tuple[Job, ...]) -> None:
        """Between decoder layers of any forward: let go of the cancelled jobs that forward does not compute
        (waiting for admission, or admitted and idle until this forward ends), instead of after it."""
        for st in self._active:
            if st.job.cancel_event.is_set() and not st.released and st.job not in in_forward:
                self._let_go(st)
        self._sweep_waiting()

    def _let_go(self, st: _Active) -> None:
        """Let go of a cancelled active job (once): salvage its KV state into the prefix cache for the next
        keystroke. Its client was answered and its seat freed by the cancel itself (Job.cancel)."""
        if st.released:
            return
        st.released = True
        self._store(st, generated=True)
        self._finish_cancelled(st.job, st)

    def _forward(self, jobs: tuple[Job, ...], abort_on_any: bool = False, **kw: Any) -> Any:
        """One forward of the model on the dynamic-cache path, abortable between decoder layers once every job
        in `jobs` is cancelled, or any of them with `abort_on_any` (raises _ForwardAborted; the caller restores
        the KV cache it passed in)."""
        self._fwd_jobs = jobs
        self._fwd_abort_on_any = abort_on_any
        try:
            return self.lm.model(**kw)
        finally:
            self._fwd_jobs = None

    def submit(self, job: Job) -> None:
        self._q.put(job)

    def warmup(self) -> None:
        """Measure prefill and decode speed once (the prefill budget needs a rate) and, on the fast path,
        trigger compilation. `start()` runs it in the worker thread."""
        import torch

        base = self.lm.encode("def main():\n    return 0\n" * 64) or [0]
        ids = (base * (256 // len(base) + 1))[:256]
        ids_small = ids[:32]
        with torch.inference_mode():
            from transformers import DynamicCache

            def prefill(x: list[int]) -> tuple[float, Any, Any]:
                t0 = time.perf_counter()
                c = DynamicCache()
                out = self.lm.model(input_ids=torch.tensor([x], device=self.lm.device), past_key_values=c,
                                    use_cache=True, logits_to_keep=1)
                self._sync()
                return (time.perf_counter() - t0) * 1e3, c, out.logits[:, -1, :].argmax(-1)

            t_small = t_big = dec = float("inf")
            for _ in range(3):  # best of three: the machine may be busy
                ts, _c, _t = prefill(ids_small)
                tb, c, tok = prefill(ids)
                t1 = time.perf_counter()
                for _ in range(4):
                    out = self.lm.model(input_ids=tok.view(1, 1), past_key_values=c, use_cache=True)
                    tok = out.logits[:, -1, :].argmax(-1)
                self._sync()
                dec = min(dec, (time.perf_counter() - t1) * 1e3 / 4)
                t_small, t_big = min(t_small, ts), min(t_big, tb)
            # time(n) ~ overhead + n * per_token (two-point fit)
            per_token = max((t_big - t_small) / (len(ids) - len(ids_small)), 1e-4)
            self.prefill_ms_per_token = per_token
            self.prefill_overhead_ms = max(0.0, t_small - len(ids_small) * per_token)
            self.decode_ms_per_token = dec
            ids = ids[:64]
            if self.fast_path:
                st = self._get_static()
                try:
                    for _ in range(3):  # compile and capture the decode step now, not on a user's keystroke
                        st.load_prefix(None, 0)
                        logits = st.prefill(ids)
                        tok = logits.argmax(-1)
                        for _ in range(4):
                            tok = st.decode(tok).argmax(-1)
                    self._sync()
                except Exception as e:  # a compile failure must not take the daemon down: run the step eagerly
                    log.warning("compiled decode step failed (%s); using the eager static-cache path", e)
                    st.compiled = False
                    st._step = st._decode_eager

    def _sync(self) -> None:
        import torch

        if self.lm.device.startswith("cuda"):
            torch.cuda.synchronize()

    def _get_static(self) -> StaticDecoder:
        if self._static is None:
            self._static = StaticDecoder(self.lm, self.static_max_len, compile=self._static_compile)
        return self._static

    # -- the loop --
    def _run(self, warmup: bool = False, ready: threading.Event | None = None) -> None:
        import torch

        if warmup:
            try:
                self.warmup()
            except Exception:  # measured rates stay unknown; requests are still served
                log.exception("warm-up failed")
        if ready is not None:
            ready.set()
        active: list[_Active] = []
        self._active = active  # seen by the abort hook (_let_go_idle)
        pending: list[Job] = []
        with torch.inference_mode():
            while not self._stop.is_set():
                try:
                    item = self._q.get(timeout=0.05) if not (active or pending) else self._q.get_nowait()
                except queue.Empty:
                    item = None
                    if not active and not pending:
                        continue
                while item is not None:
                    pending.append(item)
                    try:
                        item = self._q.get_nowait()
                    except queue.Empty:
                        item = None
                # admit up to max_active jobs; the rest wait (a cancelled waiting job is dropped at once). A cancelled
                # active job holds no seat: it was released by its cancel (Job), and its row goes at the sweep below
                new: list[Job] = []
                seats = sum(1 for a in active if not a.job.cancelled)
                for job in list(pending):
                    if job.cancelled:
                        pending.remove(job)
                        self._finish_cancelled(job, None)
                    elif seats + len(new) < self.max_active:
                        pending.remove(job)
                        new.append(job)
                if self._stop.is_set():
                    break
                self._sweep(active)
                self._waiting = (pending, new)  # swept between prefill chunks of another job (_sweep_waiting)
                while new:
                    job = new.pop(0)
                    if job.cancelled:
                        self._finish_cancelled(job, None)
                        continue
                    self.busy = True
                    try:
                        st = self._admit(job, static_free=not any(a.static for a in active), active=active)
                    except Exception as e:  # a bad request must not kill the worker
                        log.exception("request %s failed", job.id)
                        self.counters["errors"] += 1
                        job.finish(CompletionResult([Completion()], model=self.name, error=f"{type(e).__name__}: {e}"))
                        continue
                    if st is not None:
                        active.append(st)
                batchable = [st for st in active if self.batch_decode and st.static is None and st.rows == 1]
                if len(batchable) >= 2:
                    try:
                        for st in self._step_batch(batchable):
                            active.remove(st)
                    except Exception as e:
                        log.exception("batched decode failed")
                        self.counters["errors"] += 1
                        for st in batchable:
                            if not st.job.done:
                                st.result.error = f"{type(e).__name__}: {e}"
                                self._complete(st)
                            if st in active:
                                active.remove(st)
                    batchable_ids = {id(st) for st in batchable}
                else:
                    batchable_ids = set()
                for st in [a for a in active if id(a) not in batchable_ids]:
                    try:
                        done = self._step(st)
                    except Exception as e:
                        log.exception("request %s failed", st.job.id)
                        self.counters["errors"] += 1
                        st.result.error = f"{type(e).__name__}: {e}"
                        done = True
                        self._complete(st)
                    if done:
                        active.remove(st)
                self.busy = bool(active or pending)
            for st in active:
                if not st.released:
                    st.released = True
                    self._finish_cancelled(st.job, st)
            for job in pending:
                self._finish_cancelled(job, None)

    def _sweep(self, active: list[_Active]) -> None:
        """Drop every cancelled active job now (called between forwards): salvage its KV state into the prefix
        cache for the next keystroke, then let go. Its client was answered and its seat freed by the cancel
        itself (Job.cancel), so neither waits for this."""
        for st in [a for a in active if a.job.cancelled]:
            active.remove(st)
            self._let_go(st)

    def _sweep_waiting(self) -> None:
        """Between prefill chunks of one job: let go of the cancelled jobs still waiting for admission (queued,
        pending, or admitted in the same round behind the job being prefilled), so they are not held until that
        prefill ends."""
        if self._waiting is None:
            return
        pending, new = self._waiting
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            if item is None:  # stop(): leave the sentinel for the loop
                self._q.put(None)
                break
            pending.append(item)
        for lst in (new, pending):
            for job in [j for j in lst if j.cancelled]:
                lst.remove(job)
                self._finish_cancelled(job, None)

    def _chunk_size(self) -> int:
        """Prefill chunk: ~3 ms of work at the measured rate, so a cancel waits at most that long; where one
        forward call alone costs more than that (Python overhead of small models on a busy CPU), a chunk's work
        matches the overhead, so chunking at most doubles a cold prefill (KV reuse makes most prefills one
        chunk anyway) while a cancel still waits only about two overheads."""
        if self.prefill_ms_per_token > 0:
            target = max(3.0, self.prefill_overhead_ms)
            return max(32, min(self.prefill_chunk, int(target / self.prefill_ms_per_token)))
        return self.prefill_chunk

    def _finish_cancelled(self, job: Job, st: _Active | None) -> None:
        """The worker lets go of a cancelled job. Normally `Job.cancel` has answered it already (then this only
        marks it dropped); the result built here is delivered only when the job was not answered yet."""
        self.counters["cancelled"] += 1
        if job.done:
            job.drop()
            return
        res = st.result if st else CompletionResult([], model=self.name)
        if st:
            res.completions = [
                Completion(st.texts[i][: self._keep(st, i)], st.ids[i], "cancelled") for i in range(st.rows)
            ]
        res.cancelled = True
        job.finish(res)

    # -- admission: prompt, cache reuse, prefill --
    def _admit(self, job: Job, static_free: bool, active: list[_Active] | None = None) -> _Active | None:
        import torch
        from transformers import DynamicCache

        req = job.request
        t0 = time.perf_counter()
        self.counters["requests"] += 1
        reuse = self.kv_reuse and req.cache_prompt and (req.use_cache is not False)
        if req.use_cache is True:
            reuse = True
        n_predict = req.n_predict if req.n_predict >= 0 else self.lm.n_ctx
        budget_tokens = None
        if req.t_max_prompt_ms > 0 and self.prefill_ms_per_token > 0:
            budget_tokens = max(16, int((req.t_max_prompt_ms - self.prefill_overhead_ms) / self.prefill_ms_per_token))
        built = self.builder.build(
            req, n_ctx=self.lm.n_ctx - max(1, min(n_predict, self.lm.n_ctx // 2)),
            new_token_budget=budget_tokens, reused=(self.cache.peek if reuse else None),
        )
        prompt = built.tokens
        if not prompt:
            prompt = self.lm.encode("\n")
        res = CompletionResult([], model=self.name, n_ctx=self.lm.n_ctx, prompt_tokens=len(prompt),
                               truncated=built.truncated, queue_ms=(t0 - job.submitted_at) * 1e3)
        job.partial = res  # a cancel answered from the cancelling side reports what is known so far
        if built.truncated:
            self.counters["truncated"] += 1
        kv, n_reused = (self.cache.lookup(prompt, max_len=len(prompt) - 1) if reuse else (None, 0))
        rows = max(1, req.n_cmpl)
        use_static = self.fast_path and static_free and rows == 1 and len(prompt) + n_predict + 1 < self.static_max_len
        static = self._get_static() if use_static else None
        rest = prompt[n_reused:]
        # prefill in chunks; cancellation is checked between chunks
        logits = None
        if static is not None:
            static.load_prefix(kv, n_reused)
            cache = None
        else:
            cache = DynamicCache(ddp_cache_data=kv) if kv is not None else DynamicCache()
        pos = n_reused
        step = self._chunk_size()
        for i in range(0, len(rest), step):
            if active:
                self._sweep(active)
            self._sweep_waiting()
            if job.cancelled:
                self._cancel_prefill(job, res, prompt, pos, n_reused, reuse, static, cache)
                return None
            chunk = rest[i : i + step]
            if static is not None:  # the static-cache (GPU) path is not abortable mid-chunk: chunks are short
                logits = static.prefill(chunk)
            else:
                ids = torch.tensor([chunk], device=self.lm.device)
                position_ids = torch.arange(pos, pos + len(chunk), device=self.lm.device).unsqueeze(0)
                try:
                    out = self._forward((job,), input_ids=ids, position_ids=position_ids, past_key_values=cache,
                                        use_cache=True, logits_to_keep=1)
                except _ForwardAborted:  # cancelled during this chunk: back to the KV state before it
                    truncate_cache(cache, pos)
                    self.counters["aborted_forwards"] = self.counters.get("aborted_forwards", 0) + 1
                    self._cancel_prefill(job, res, prompt, pos, n_reused, reuse, static, cache)
                    return None
                cache = out.past_key_values
                logits = out.logits[:, -1, :]
            pos += len(chunk)
        self._sync()
        t1 = time.perf_counter()
        res.prompt_n = len(rest)
        res.tokens_reused = n_reused
        res.prompt_ms = (t1 - t0) * 1e3
        self.counters["prompt_tokens"] += len(rest)
        self.counters["prompt_tokens_reused"] += n_reused
        if len(rest) >= 128:
            n_chunks = -(-len(rest) // step)
            rate = max(1e-4, ((t1 - t0) * 1e3 - n_chunks * self.prefill_overhead_ms) / len(rest))
            self.prefill_ms_per_token = rate if self.prefill_ms_per_token == 0 else 0.7 * self.prefill_ms_per_token + 0.3 * rate
        gen = None
        if req.temperature > 0:
            gen = torch.Generator(device=self.lm.device)
            gen.manual_seed(req.seed if req.seed is not None else int(time.time_ns() % 2**31))
        # first tokens
        if rows > 1:
            logits = logits.expand(rows, -1)
            if cache is not None:
                cache = DynamicCache(ddp_cache_data=[(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1))
                                                     for k, v in self._layers(cache)])
        if req.temperature <= 0 and rows > 1:
            first = torch.topk(logits[0:1], rows, dim=-1).indices[0]
        else:
            first = sample(logits, req, gen)
        prefix_line = req.prefix.rsplit("\n", 1)[-1] if req.raw_prompt is None else req.raw_prompt.rsplit("\n", 1)[-1]
        st = _Active(
            job=job, req=req, prompt=prompt, rows=rows, cache=cache, static=static, next_tok=first, gen=gen,
            cursor_line=prefix_line, t_start=t0, t_predict_start=t1, result=res,
            ids=[[] for _ in range(rows)], texts=["" for _ in range(rows)], emitted=[0] * rows,
            finished=[False] * rows, stop_types=["none"] * rows, words=[""] * rows, keep=[-1] * rows,
        )
        if n_predict == 0:
            # warm-up only: keep the prompt's KV for the next request
            self._store(st, generated=False)
            res.completions = [Completion("", [], "limit")]
            res.tokens_cached = len(prompt) - 1
            job.finish(res)
            return None
        return st

    def _cancel_prefill(self, job: Job, res: CompletionResult, prompt: list[int], pos: int, n_reused: int,
                        reuse: bool, static: StaticDecoder | None, cache: Any) -> None:
        res.prompt_n = pos - n_reused
        # keep the work done so far: the next keystroke's prompt shares this prefix
        if reuse and pos > n_reused:
            part = static.export(pos) if static is not None else [
                (k[:, :, :pos, :], v[:, :, :pos, :]) for k, v in self._layers(cache)]
            self.cache.insert(np.asarray(prompt[:pos]), part)
        self._finish_cancelled(job, None)

    def _drop_aborted(self, st: _Active) -> None:
        """A decode forward of `st` was aborted (its job is cancelled; its KV cache is back to the state before
        that forward): salvage the KV state and let go."""
        self.counters["aborted_forwards"] = self.counters.get("aborted_forwards", 0) + 1
        self._let_go(st)

    @staticmethod
    def _layers(cache: Any) -> KV:
        return [(layer.keys, layer.values) for layer in cache.layers]

    # -- one decode round for one job --
    def _step(self, st: _Active) -> bool:
        """One decode round for one job on its own: consume the sampled tokens, then compute the next ones."""
        if self._consume(st):
            return True
        if st.static is not None:
            logits = st.static.decode(st.next_tok.view(1))
        else:
            try:
                logits = self._forward_single(st)
            except _ForwardAborted:
                self._drop_aborted(st)
                return True
        st.next_tok = sample(logits, st.req, st.gen)
        return False

    def _forward_single(self, st: _Active) -> Any:
        import torch

        # every row (finished rows ride along; their output is ignored)
        ids = st.next_tok.view(st.rows, 1)
        n = len(st.prompt) + st.n_steps - 1  # KV length before this forward
        pos = torch.full((st.rows, 1), n, device=self.lm.device)
        try:
            out = self._forward((st.job,), input_ids=ids, position_ids=pos, past_key_values=st.cache, use_cache=True)
        except _ForwardAborted:
            truncate_cache(st.cache, n)
            raise
        st.cache = out.past_key_values
        return out.logits[:, -1, :]

    def _consume(self, st: _Active) -> bool:
        """Take the tokens sampled last round: stop rules, streaming. True when the job is finished (released)."""
        if st.job.cancelled:
            self._let_go(st)
            return True
        req = st.req
        n_predict = req.n_predict if req.n_predict > 0 else self.lm.n_ctx
        toks = st.next_tok.tolist()
        now = time.perf_counter()
        for i in range(st.rows):
            if st.finished[i]:
                continue
            t = int(toks[i])
            if t in self.lm.stop_ids:
                st.finished[i] = True
                st.stop_types[i] = "eos"
                continue
            st.ids[i].append(t)
            text = self.lm.decode(st.ids[i])
            st.texts[i] = text
            d = self._check(st, i, text, now, n_predict)
            if d:
                st.finished[i] = True
            self._emit(st, i)
        st.n_steps += 1
        total_len = len(st.prompt) + st.n_steps
        if all(st.finished) or total_len >= self.lm.n_ctx - 1:
            for i in range(st.rows):
                if not st.finished[i]:
                    st.finished[i] = True
                    st.stop_types[i] = "limit"
                    self._emit(st, i)
            self._complete(st)
            return True
        return False

    # -- batched decode across jobs (concurrent clients) --
    def _step_batch(self, members: list[_Active]) -> list[_Active]:
        """One decode round for several single-row jobs in one forward: their KV states are left-padded to a
        common length with an attention mask and per-row positions. Returns the jobs that finished."""
        finished = [st for st in members if self._consume(st)]
        live = [st for st in members if st not in finished]
        while live:
            if len(live) == 1:
                st = live[0]
                try:
                    st.next_tok = sample(self._forward_single(st), st.req, st.gen)
                except _ForwardAborted:
                    self._drop_aborted(st)
                    finished.append(st)
                return finished
            try:
                self._forward_batch(live)
                return finished
            except _ForwardAborted:
                # a row's job was cancelled mid-forward: drop it now (the batch's KV was a padded copy, so every
                # job's own cache is untouched) and redo the step for the others, who lose at most one forward
                gone = [st for st in live if st.job.cancelled]
                for st in gone:
                    self._drop_aborted(st)
                finished += gone
                live = [st for st in live if st not in gone]
        return finished

    def _forward_batch(self, live: list[_Active]) -> None:
        """One decode forward over several single-row jobs; sets each one's next token. Raises _ForwardAborted
        (at the next decoder layer) as soon as any of them is cancelled."""
        import torch
        from transformers import DynamicCache

        lens = [len(st.prompt) + st.n_steps - 1 for st in live]  # KV length of each row
        maxlen = max(lens)
        per_layer = [self._layers(st.cache) for st in live]
        n_layers = len(per_layer[0])
        kv = []
        for li in range(n_layers):
            ks, vs = [], []
            for st_i, layers in enumerate(per_layer):
                k, v = layers[li]
                pad = maxlen - lens[st_i]
                if pad:
                    k = torch.nn.functional.pad(k, (0, 0, pad, 0))
                    v = torch.nn.functional.pad(v, (0, 0, pad, 0))
                ks.append(k)
                vs.append(v)
            kv.append((torch.cat(ks, 0), torch.cat(vs, 0)))
        cache = DynamicCache(ddp_cache_data=kv)
        mask = torch.ones((len(live), maxlen + 1), dtype=torch.long, device=self.lm.device)
        for i, n in enumerate(lens):
            mask[i, : maxlen - n] = 0
        ids = torch.stack([st.next_tok.view(()) for st in live]).view(len(live), 1)
        pos = torch.tensor(lens, device=self.lm.device).view(len(live), 1)
        out = self._forward(tuple(st.job for st in live), abort_on_any=True, input_ids=ids, attention_mask=mask,
                            position_ids=pos, past_key_values=cache, use_cache=True)
        logits = out.logits[:, -1, :]
        new = self._layers(out.past_key_values)
        for i, st in enumerate(live):
            pad = maxlen - lens[i]
            st.cache = DynamicCache(ddp_cache_data=[(k[i : i + 1, :, pad:, :], v[i : i + 1, :, pad:, :]) for k, v in new])
            st.next_tok = sample(logits[i : i + 1], st.req, st.gen)
        self.counters["batched_steps"] = self.counters.get("batched_steps", 0) + 1

    def _check(self, st: _Active, i: int, text: str, now: float, n_predict: int) -> bool:
        req = st.req
        d = check_stop_strings(text, req.stop)
        if not d.stop and req.n_indent > 0:
            d = check_n_indent(text, req.n_indent)
        if not d.stop and req.stop_at_unit:
            d = check_unit(st.cursor_line, text)
        if d.stop:
            st.keep[i] = d.keep
            st.stop_types[i] = d.stop_type
            st.words[i] = d.word
            return True
        if len(st.ids[i]) >= n_predict:
            st.stop_types[i] = "limit"
            return True
        if req.t_max_predict_ms > 0 and "\n" in text and (now - st.t_predict_start) * 1e3 > req.t_max_predict_ms:
            st.stop_types[i] = "limit"
            return True
        return False

    @staticmethod
    def _keep(st: _Active, i: int) -> int:
        return st.keep[i] if st.keep[i] >= 0 else len(st.texts[i])

    def _emit(self, st: _Active, i: int) -> None:
        text = st.texts[i][: self._keep(st, i)]
        if not st.finished[i]:
            # hold back an incomplete UTF-8 sequence and a possible partial stop string
            if text.endswith("\ufffd"):
                return
            hold = max((len(s) - 1 for s in st.req.stop if s), default=0)
            text = text[: max(st.emitted[i], len(text) - hold)]
        if len(text) > st.emitted[i]:
            st.job.emit(i, text[st.emitted[i] :])
            st.emitted[i] = len(text)

    def _complete(self, st: _Active) -> None:
        t = time.perf_counter()
        res = st.result
        res.predicted_n = sum(len(x) for x in st.ids)
        res.predicted_ms = (t - st.t_predict_start) * 1e3
        self.counters["predicted_tokens"] += res.predicted_n
        if st.n_steps > 1:
            rate = res.predicted_ms / st.n_steps
            self.decode_ms_per_token = rate if self.decode_ms_per_token == 0 else 0.7 * self.decode_ms_per_token + 0.3 * rate
        res.completions = [
            Completion(st.texts[i][: self._keep(st, i)], st.ids[i], st.stop_types[i], st.words[i]) for i in range(st.rows)
        ]
        res.tokens_cached = self._store(st, generated=True)
        if st.job.first_token_at:
            res.ttft_ms = (st.job.first_token_at - st.job.submitted_at) * 1e3
        st.job.finish(res)

    def _store(self, st: _Active, generated: bool) -> int:
        """Put the KV state of the prompt (+ the first candidate's generated tokens) into the prefix cache."""
        if not (self.kv_reuse and st.req.cache_prompt and st.req.use_cache is not False) and st.req.use_cache is not True:
            return 0
        # The KV covers the prompt plus every generated token that was fed back (all but the last sampled one).
        fed = max(0, st.n_steps - 1) if generated else 0
        gen_ids = st.ids[0][:fed] if st.rows >= 1 else []
        if len(gen_ids) < fed:  # row 0 stopped early; its extra KV positions hold tokens we did not keep
            fed = len(gen_ids)
        tokens = list(st.prompt) + gen_ids
        n = len(tokens)
        if st.static is not None:
            n = min(n, st.static.length)
            kv = st.static.export(n)
        elif st.cache is not None:
            kv = [(k[0:1, :, :n, :], v[0:1, :, :n, :]) for k, v in self._layers(st.cache)]
            k0 = kv[0][0] if kv else None
            if k0 is not None and k0.untyped_storage().nbytes() > 1.5 * k0.numel() * k0.element_size():
                # a view into a bigger tensor (a batch, or n_cmpl rows): copy, so the cache's memory bound holds
                kv = [(k.clone(), v.clone()) for k, v in kv]
            if kv and kv[0][0].shape[2] < n:
                n = kv[0][0].shape[2]
                kv = [(k[:, :, :n, :], v[:, :, :n, :]) for k, v in kv]
        else:
            return 0
        if n <= 0:
            return 0
        self.cache.insert(np.asarray(tokens[:n]), kv)
        return n
