"""Fill-in-the-middle prompt formats: one table for the model families Ghostline knows.

A format turns (repository context, file name, prefix, suffix) into one prompt string. Layouts keep the parts
that change least first so that typing only appends to the prompt and the KV prefix cache can reuse the rest:
repository context, then (for suffix-first formats) the suffix, then the prefix, which grows as the user types.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ExtraChunk:
    """A piece of extra context (llama.cpp's `input_extra`): text from another file or buffer."""

    text: str
    filename: str = ""


@dataclass(frozen=True)
class FimFormat:
    name: str
    prefix_tok: str
    suffix_tok: str
    middle_tok: str
    suffix_first: bool = False
    # Repository-level context markers (Qwen2.5-Coder, StarCoder2); empty when the family has none.
    repo_name_tok: str = ""
    file_sep_tok: str = ""
    # How an extra chunk is introduced when there is no file separator token: a comment line with its name.
    extra_comment: str = "# {filename}\n"
    # Tokens that end a completion besides the tokenizer's EOS.
    stop_tokens: tuple[str, ...] = field(default_factory=tuple)
    # Codestral puts the suffix first and needs no middle marker, CodeLlama wants a space after <SUF>/<PRE>.
    bos_text: str = ""
    # The suffix-first variant of this family, when the family was trained on it (StarCoder: PSM and SPM at
    # 50/50; CodeLlama: both). Detection prefers it: typing then only appends to the prompt, so the KV prefix
    # cache reuses everything up to the cursor.
    spm_variant: str = ""

    def render_context(self, extra: list[ExtraChunk], repo_name: str = "", filename: str = "") -> str:
        """The stable, repository-level head of the prompt (before the FIM markers)."""
        out: list[str] = []
        if self.file_sep_tok:
            if repo_name and self.repo_name_tok:
                out.append(f"{self.repo_name_tok}{repo_name}\n")
            for ch in extra:
                out.append(f"{self.file_sep_tok}{ch.filename}\n{ch.text}" if ch.filename else f"{self.file_sep_tok}{ch.text}")
                if not ch.text.endswith("\n"):
                    out.append("\n")
            if extra or repo_name:
                out.append(f"{self.file_sep_tok}{filename}\n" if filename else self.file_sep_tok)
        else:
            for ch in extra:
                if ch.filename and self.extra_comment:
                    out.append(self.extra_comment.format(filename=ch.filename))
                out.append(ch.text)
                if not ch.text.endswith("\n"):
                    out.append("\n")
        return "".join(out)

    def build(
        self,
        prefix: str,
        suffix: str,
        extra: list[ExtraChunk] | None = None,
        *,
        repo_name: str = "",
        filename: str = "",
    ) -> str:
        """The full prompt. With repository context, the context goes before the FIM markers (PSM) or inside the
        prefix section (it is part of "what comes before"); both keep it at the very start of the prompt."""
        head = self.render_context(list(extra or []), repo_name, filename)
        if self.suffix_first:
            if self.name == "codestral":
                # Codestral: [SUFFIX]suffix[PREFIX]prefix  (the model continues after the prefix).
                return f"{self.bos_text}{head}{self.suffix_tok}{suffix}{self.prefix_tok}{prefix}"
            if self.name == "codellama-spm":
                # CodeLlama SPM: <PRE> <SUF>suffix <MID> prefix
                return f"{self.bos_text}{head}{self.prefix_tok} {self.suffix_tok}{suffix} {self.middle_tok} {prefix}"
            # SPM as StarCoder was trained on it (bigcode Megatron): <PRE><SUF>suffix<MID>prefix -- the prefix is
            # last, so typing only appends to the prompt.
            return f"{self.bos_text}{head}{self.prefix_tok}{self.suffix_tok}{suffix}{self.middle_tok}{prefix}"
        if self.name == "codellama":
            return f"{self.bos_text}{head}{self.prefix_tok} {prefix} {self.suffix_tok}{suffix} {self.middle_tok}"
        if self.file_sep_tok and head:
            return f"{self.bos_text}{head}{self.prefix_tok}{prefix}{self.suffix_tok}{suffix}{self.middle_tok}"
        return f"{self.bos_text}{self.prefix_tok}{head}{prefix}{self.suffix_tok}{suffix}{self.middle_tok}"


_STARCODER_STOPS = ("<|endoftext|>", "<file_sep>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>")
_QWEN_STOPS = (
    "<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>", "<|fim_prefix|>", "<|fim_suffix|>",
    "<|fim_middle|>", "<|im_end|>",
)

FORMATS: dict[str, FimFormat] = {
    # StarCoder / StarCoderBase / StarCoder2 (StarCoder2 adds <repo_name>/<file_sep> repository context).
    "starcoder": FimFormat(
        "starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>",
        repo_name_tok="<repo_name>", file_sep_tok="<file_sep>", stop_tokens=_STARCODER_STOPS,
        spm_variant="starcoder-spm",
    ),
    "starcoder-spm": FimFormat(
        "starcoder-spm", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", suffix_first=True,
        stop_tokens=_STARCODER_STOPS,
    ),
    # Qwen2.5-Coder: <|repo_name|>name\n<|file_sep|>path\ncontent ... <|fim_prefix|>..<|fim_suffix|>..<|fim_middle|>
    "qwen": FimFormat(
        "qwen", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
        repo_name_tok="<|repo_name|>", file_sep_tok="<|file_sep|>", stop_tokens=_QWEN_STOPS,
    ),
    # DeepSeek-Coder (v1): PSM only.
    "deepseek": FimFormat(
        "deepseek", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",
        stop_tokens=("<｜end▁of▁sentence｜>", "<|EOT|>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
    ),
    # CodeLlama infilling: "<PRE> {prefix} <SUF>{suffix} <MID>", EOT ends the middle.
    "codellama": FimFormat(
        "codellama", "<PRE>", "<SUF>", "<MID>", stop_tokens=("<EOT>", "</s>"), spm_variant="codellama-spm",
    ),
    "codellama-spm": FimFormat(
        "codellama-spm", "<PRE>", "<SUF>", "<MID>", suffix_first=True, stop_tokens=("<EOT>", "</s>"),
    ),
    # Codestral (Mistral): suffix first, "[SUFFIX]{suffix}[PREFIX]{prefix}".
    "codestral": FimFormat(
        "codestral", "[PREFIX]", "[SUFFIX]", "", suffix_first=True, stop_tokens=("</s>", "[PREFIX]", "[SUFFIX]"),
    ),
    # Generic templates for models that use the StarCoder-style token names but not their family defaults.
    "psm": FimFormat("psm", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", stop_tokens=_STARCODER_STOPS),
    "spm": FimFormat(
        "spm", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", suffix_first=True, stop_tokens=_STARCODER_STOPS,
    ),
}

ALIASES = {
    "starcoder2": "starcoder",
    "starcoderbase": "starcoder",
    "bigcode": "starcoder",
    "qwen2.5-coder": "qwen",
    "qwen2": "qwen",
    "qwen-coder": "qwen",
    "deepseek-coder": "deepseek",
    "code-llama": "codellama",
    "mistral": "codestral",
    "generic": "psm",
}


def get_format(name: str) -> FimFormat:
    """A format by name or alias; `ValueError` with the known names otherwise."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise ValueError(f"unknown FIM format {name!r}; known: {known}")
    return FORMATS[key]


def detect_format(model_type: str = "", name_or_path: str = "", vocab: set[str] | frozenset[str] = frozenset(),
                  prefer_suffix_first: bool = False) -> FimFormat:
    """Pick the format from the tokenizer's special tokens first (most reliable), then from the model's name.
    With `prefer_suffix_first`, a family's suffix-first variant is chosen when it has one."""
    f = _detect(model_type, name_or_path, vocab)
    if prefer_suffix_first and f.spm_variant:
        return FORMATS[f.spm_variant]
    return f


def _detect(model_type: str, name_or_path: str, vocab: set[str] | frozenset[str]) -> FimFormat:
    if "<|fim_prefix|>" in vocab:
        return FORMATS["qwen"]
    if "<｜fim▁begin｜>" in vocab:
        return FORMATS["deepseek"]
    if "[SUFFIX]" in vocab and "[PREFIX]" in vocab:
        return FORMATS["codestral"]
    if "<fim_prefix>" in vocab:
        return FORMATS["starcoder"]
    if "<PRE>" in vocab or "▁<PRE>" in vocab:
        return FORMATS["codellama"]
    hay = f"{model_type} {name_or_path}".lower()
    for needle, key in (
        ("qwen", "qwen"), ("deepseek", "deepseek"), ("codestral", "codestral"), ("starcoder", "starcoder"),
        ("codellama", "codellama"), ("code-llama", "codellama"),
    ):
        if needle in hay:
            return FORMATS[key]
    return FORMATS["psm"]
