"""Build a random-weight Llama-style checkpoint with a real BPE tokenizer (FIM special tokens included).

Used by the tests (tiny dims) and the benchmark (small on CPU; shaped like a 1.5B code model on a GPU). The
checkpoint is saved with `save_pretrained`, so it is loaded through the same code path as a real model.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

FIM_SPECIALS = [
    "<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>", "<file_sep>", "<repo_name>",
    "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>",
]

SHAPES = {
    # name: hidden, layers, heads, kv_heads, intermediate, model vocab (0: the tokenizer's)
    "tiny": (64, 2, 4, 2, 128, 0),
    "small": (256, 4, 8, 2, 688, 0),
    # Qwen2.5-Coder-1.5B: hidden 1536, 28 layers, 12 heads, 2 KV heads, intermediate 8960, vocab 151936
    # (the embedding/LM head is full size so its cost is real; rows past the tokenizer are never picked)
    "1.5b": (1536, 28, 12, 2, 8960, 151936),
}


def corpus_files(limit: int = 60) -> list[Path]:
    """Real Python sources from the standard library (always installed)."""
    std = Path(sysconfig.get_paths()["stdlib"])
    names = ["json/decoder.py", "json/encoder.py", "textwrap.py", "string.py", "shlex.py", "difflib.py",
             "argparse.py", "functools.py", "heapq.py", "bisect.py", "csv.py", "fnmatch.py", "glob.py",
             "configparser.py", "dataclasses.py", "enum.py", "typing.py", "pathlib.py", "queue.py", "sched.py"]
    out = [std / n for n in names if (std / n).is_file()]
    return out[:limit]


def build_tokenizer(vocab_size: int = 2048, files: list[Path] | None = None):  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=FIM_SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in (files or corpus_files())]
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token=None, unk_token=None, pad_token="<fim_pad>",
        additional_special_tokens=FIM_SPECIALS[1:],
    )


def build_checkpoint(
    path: str | Path,
    shape: str = "tiny",
    *,
    vocab_size: int = 2048,
    max_positions: int = 4096,
    seed: int = 0,
    dtype: str = "float32",
) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(vocab_size)
    hidden, layers, heads, kv_heads, inter, model_vocab = SHAPES[shape]
    cfg = LlamaConfig(
        vocab_size=max(model_vocab, len(tok)), hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=max_positions,
        eos_token_id=tok.eos_token_id, bos_token_id=None, pad_token_id=tok.pad_token_id, tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    if shape == "1.5b" and torch.cuda.is_available():
        torch.set_default_device("cuda")  # initialise 1.5B parameters on the GPU (much faster than CPU init)
    try:
        model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_device(None)
    # Random weights would pick special tokens (and so stop) as often as text; zero their (tied) embedding rows
    # so their logits sit at 0 while the best text token's logit is positive: completions run to their limits
    # and stream readable text.
    with torch.no_grad():
        special = [tok.convert_tokens_to_ids(t) for t in FIM_SPECIALS]
        # likewise for tokens that are not valid UTF-8 on their own (partial multi-byte sequences)
        special += [i for i in range(len(tok)) if "\ufffd" in tok.decode([i])]
        special += list(range(len(tok), cfg.vocab_size))
        model.get_input_embeddings().weight[special] = 0.0
        if not cfg.tie_word_embeddings:
            model.get_output_embeddings().weight[special] = 0.0
    model = model.to(getattr(torch, dtype))
    model.save_pretrained(path)
    del model
    tok.save_pretrained(path)
    return path
