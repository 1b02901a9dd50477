"""Pure logic: stopping rules, the prefix cache, prompt truncation, the classical completer."""

import numpy as np
import torch

from ghostline.daemon.engine.classical import ClassicalCompleter
from ghostline.daemon.engine.fim import ExtraChunk, get_format
from ghostline.daemon.engine.kvcache import PrefixCache, common_prefix_len
from ghostline.daemon.engine.prompt import PromptBuilder
from ghostline.daemon.engine.stopping import check_n_indent, check_stop_strings, check_unit
from ghostline.daemon.engine.types import CompletionRequest

# -- stopping --


def test_n_indent_cuts_dedented_line():
    d = check_n_indent("a\n    b\nc", 4)
    assert d.stop and "a\n    b\nc"[: d.keep] == "a\n    b\n"
    assert not check_n_indent("a\n    b\n    c", 4).stop
    assert not check_n_indent("a\n   ", 4).stop  # a blank line so far decides nothing
    assert not check_n_indent("abc", 4).stop


def test_stop_strings_earliest():
    d = check_stop_strings("foo bar baz", ["baz", "bar"])
    assert d.stop and d.keep == 4 and d.word == "bar"
    assert not check_stop_strings("foo", ["x"]).stop


def test_unit_single_line():
    d = check_unit("x = ", "compute()\ny = 2\n")
    assert d.stop and "compute()\ny = 2\n"[: d.keep] == "compute()"
    assert not check_unit("x = ", "compute(").stop


def test_unit_python_block():
    text = "def g(a):\n    return a\n\nz = 1\n"
    d = check_unit("", text)
    assert d.stop and text[: d.keep] == "def g(a):\n    return a\n"


def test_unit_brace_block_keeps_closer():
    text = "if (x) {\n  y();\n}\nz();\n"
    d = check_unit("", text)
    assert d.stop and text[: d.keep] == "if (x) {\n  y();\n}"


# -- prefix cache --


def _kv(n, layers=2, fill=0.0):
    return [(torch.full((1, 2, n, 4), fill), torch.full((1, 2, n, 4), fill)) for _ in range(layers)]


def test_common_prefix_len():
    assert common_prefix_len(np.array([1, 2, 3]), np.array([1, 2, 4])) == 2
    assert common_prefix_len(np.array([1, 2]), np.array([1, 2, 3])) == 2
    assert common_prefix_len(np.array([]), np.array([1])) == 0


def test_prefix_cache_hit_miss_and_slices():
    c = PrefixCache(min_hit=2)
    c.insert([1, 2, 3, 4], _kv(4, fill=1.0))
    kv, n = c.lookup([1, 2, 3, 9, 9])
    assert n == 3 and kv[0][0].shape[2] == 3
    assert c.stats.hits == 1
    kv, n = c.lookup([7, 7])
    assert kv is None and n == 0
    kv, n = c.lookup([1, 2, 3, 4], max_len=3)  # a full hit leaves one token to compute
    assert n == 3


def test_prefix_cache_subsumes_and_lru():
    c = PrefixCache(max_entries=2, min_hit=1)
    c.insert([1, 2], _kv(2))
    c.insert([1, 2, 3], _kv(3))  # covers [1, 2]
    assert len(c) == 1
    c.insert([5, 6], _kv(2))
    c.lookup([1, 2, 3])  # touch: [5, 6] becomes the oldest
    c.insert([8, 9], _kv(2))
    assert len(c) == 2 and c.peek([5, 6]) == 0 and c.peek([1, 2, 3]) == 3
    assert c.stats.evictions == 1


def test_prefix_cache_memory_bound():
    one = sum(k.numel() * 4 * 2 for k, _ in _kv(10))
    c = PrefixCache(max_bytes=int(one * 2.5))
    for i in range(5):
        c.insert([100 + i] * 10, _kv(10))
    assert len(c) == 2 and c.nbytes <= c.max_bytes


# -- prompt truncation --


def _enc(text):
    return list(text.encode())  # one token per byte


def test_prompt_truncation_drops_extra_then_lines():
    b = PromptBuilder(get_format("psm"), _enc)
    req = CompletionRequest(prefix="l1\nl2\nl3\ncur", suffix="s1\ns2", extra=[ExtraChunk("E" * 50, "a.py"),
                                                                          ExtraChunk("F" * 10, "b.py")])
    full = b.build(req, n_ctx=10_000)
    assert not full.truncated and "EEEE" in full.text
    fit = b.build(req, n_ctx=len(full.tokens) - 40)
    assert fit.truncated and "E" * 50 not in fit.text and "FFFF" in fit.text
    tight = b.build(req, n_ctx=10_000, new_token_budget=45)
    assert tight.truncated and len(tight.tokens) <= 45 and "cur" in tight.text
    # with a cache that already holds the whole prompt, the budget is not exceeded: nothing is dropped
    cached = b.build(req, n_ctx=10_000, new_token_budget=5, reused=lambda toks: len(toks))
    assert not cached.truncated


# -- classical --


def test_classical_identifiers_ranked_by_frequency():
    c = ClassicalCompleter()
    c.add_text("compute_total compute_total compute_tax compute_total")
    assert c.complete("x = compute_t", n=2) == ["otal", "ax"]


def test_classical_lines_and_suffix_dedup():
    c = ClassicalCompleter()
    c.add_text("    return self.value\n    return self.value\n    return None\n")
    assert c.complete("def f():\n    return s") == ["elf"]  # identifier first
    assert c.complete("def f():\n    return ", n=2)[0] == "self.value"
    # a line must end with what stands right of the cursor: "None" before "self.value" would not
    assert c.complete("def f():\n    return ", suffix="self.value\n", n=1) == []
    assert c.complete("def f():\n    return ", suffix="\n", n=2) == ["self.value", "None"]


def test_classical_buffers_replace_and_repo(tmp_path):
    c = ClassicalCompleter()
    c.update_buffer("a.py", "alpha_one = 1")
    c.update_buffer("a.py", "beta_two = 2")
    assert c.complete("alpha_") == []
    assert c.complete("beta_") == ["two"]
    (tmp_path / "m.py").write_text("gamma_three = 3\n")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.js").write_text("delta_four = 4\n")
    assert c.index_repository(tmp_path) == 1
    assert c.complete("gamma_") == ["three"] and c.complete("delta_") == []


def test_classical_repository_mining_respects_gitignore(tmp_path):
    (tmp_path / ".git" / "info").mkdir(parents=True)
    (tmp_path / ".git" / "info" / "exclude").write_text("local_only.py\n")
    (tmp_path / ".gitignore").write_text("generated/\n*.gen.py\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / ".gitignore").write_text("scratch_*.py\n!scratch_kept.py\n")
    files = {
        "src/app.py": "kept_alpha = 1\n",
        "src/scratch_kept.py": "kept_beta = 2\n",  # re-included by the nested .gitignore
        "src/scratch_tmp.py": "ignored_gamma = 3\n",
        "generated/out.py": "ignored_delta = 4\n",
        "src/model.gen.py": "ignored_epsilon = 5\n",
        "local_only.py": "ignored_zeta = 6\n",
        ".venv/lib/site.py": "ignored_eta = 7\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    c = ClassicalCompleter()
    assert c.index_repository(tmp_path) == 2
    assert c.complete("kept_a") == ["lpha"] and c.complete("kept_b") == ["eta"]
    assert c.complete("ignored_", n=10) == []
