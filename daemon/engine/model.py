"""The model itself: load a Hugging Face causal LM from a local path (`LocalModel`), sample from its logits, find
its decoder layers, cut a KV cache back, and the GPU fast path (`StaticDecoder`).

torch and transformers are imported inside functions only: importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostline.daemon.engine.fim import FimFormat, detect_format, get_format
from ghostline.daemon.engine.kvcache import KV
from ghostline.daemon.engine.types import CompletionRequest


class ModelLoadError(Exception):
    """The checkpoint at the given path cannot be loaded (message says why, in one line)."""


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
    # the forward keyword of the KV cache: `cache` (transformers >= 5.2x; `past_key_values` is deprecated there
    # and goes away in 5.40), `past_key_values` before
    cache_kw: str = "past_key_values"

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
        device, dtype = _device_and_dtype(torch, device, dtype)
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
        stop_ids = _stop_ids(tok, model, fim, vocab)
        ctx = n_ctx or int(getattr(model.config, "max_position_embeddings", 4096) or 4096)
        n_params = sum(x.numel() for x in model.parameters())
        add_bos = bool(getattr(tok, "add_bos_token", False)) and tok.bos_token_id is not None
        return cls(
            model=model, tokenizer=tok, name=p.name, device=device, dtype=dtype, fim=fim, n_ctx=ctx,
            stop_ids=stop_ids, bos_id=tok.bos_token_id if add_bos else None, n_params=n_params,
            cache_kw=cache_keyword(model),
        )

    def call(self, cache: Any, **kw: Any) -> Any:
        """One forward of the model with `cache` as its KV cache (under the keyword this transformers takes)."""
        return self.model(**{self.cache_kw: cache}, **kw)

    def chat_prompt(self, messages: list[dict[str, str]]) -> tuple[str, list[str]]:
        """The prompt for a chat (its template, ready for the assistant's turn) and the strings that end a turn.
        A model without a chat template (a base FIM model) gets ChatML."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
            text += "<|im_start|>assistant\n"
        ends = ["<|im_end|>", "<|eot_id|>", "<|end|>", "<|end_of_turn|>", "<end_of_turn>", "</s>", "<|endoftext|>"]
        if isinstance(tok.eos_token, str) and tok.eos_token:
            ends.append(tok.eos_token)
        return text, sorted(set(ends))

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if self.bos_id is not None:
            ids = [self.bos_id, *ids]
        return ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def cache_keyword(model: Any) -> str:
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def cache_of(out: Any) -> Any:
    """The KV cache a forward returned (`out.cache`; `out.past_key_values` on older transformers)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _device_and_dtype(torch: Any, device: str | None, dtype: str | None) -> tuple[str, str]:
    """CUDA when there is one; bf16 (else fp16) on it, fp32 on the CPU."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype is None:
        if device.startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            dtype = "float32"
    return device, dtype


def _stop_ids(tok: Any, model: Any, fim: FimFormat, vocab: set[str]) -> set[int]:
    """The tokens that end a completion: the tokenizer's and the generation config's EOS, and the FIM format's
    stop tokens that the vocabulary has."""
    stop_ids: set[int] = set()
    if isinstance(tok.eos_token_id, int):
        stop_ids.add(tok.eos_token_id)
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for t in gen_eos if isinstance(gen_eos, list) else [gen_eos]:
        if isinstance(t, int):
            stop_ids.add(t)
    for s in fim.stop_tokens:
        if s in vocab:
            stop_ids.add(tok.convert_tokens_to_ids(s))
    return stop_ids


# --------------------------------------------------------------------------------------------------------------
# sampling


def sample(logits: Any, req: CompletionRequest, gen: Any) -> Any:
    """Next tokens for a batch of logits [B, V]. Greedy when temperature <= 0; else temperature, top_k, top_p,
    multinomial."""
    import torch

    if req.temperature <= 0:
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
        out = self.lm.call(self.cache, input_ids=input_ids, position_ids=position_ids, use_cache=True)
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
        out = self.lm.call(self.cache, input_ids=t, position_ids=pos, use_cache=True, logits_to_keep=1)
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

