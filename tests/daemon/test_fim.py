import pytest

from ghostline.daemon.engine.fim import FORMATS, ExtraChunk, detect_format, get_format


def test_starcoder_psm():
    f = get_format("starcoder")
    assert f.build("def f(", "):\n") == "<fim_prefix>def f(<fim_suffix>):\n<fim_middle>"


def test_starcoder2_repo_context():
    f = get_format("starcoder2")
    p = f.build("x = ", "\n", [ExtraChunk("import os\n", "a.py")], repo_name="proj", filename="b.py")
    assert p == ("<repo_name>proj\n<file_sep>a.py\nimport os\n<file_sep>b.py\n"
                 "<fim_prefix>x = <fim_suffix>\n<fim_middle>")


def test_spm_keeps_prefix_last():
    f = get_format("spm")
    assert f.build("PRE", "SUF") == "<fim_prefix><fim_suffix>SUF<fim_middle>PRE"
    # typing only appends to the prompt
    assert f.build("PRE+", "SUF").startswith(f.build("PRE", "SUF"))


def test_qwen_repo_name_and_file_sep():
    f = get_format("qwen2.5-coder")
    p = f.build("a", "b", [ExtraChunk("c = 1", "lib/c.py")], repo_name="r", filename="main.py")
    assert p == ("<|repo_name|>r\n<|file_sep|>lib/c.py\nc = 1\n<|file_sep|>main.py\n"
                 "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>")
    assert f.build("a", "b") == "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"


def test_deepseek():
    assert get_format("deepseek-coder").build("a", "b") == "<｜fim▁begin｜>a<｜fim▁hole｜>b<｜fim▁end｜>"


def test_codellama_psm_and_spm():
    assert get_format("codellama").build("a", "b") == "<PRE> a <SUF>b <MID>"
    assert get_format("codellama-spm").build("a", "b") == "<PRE> <SUF>b <MID> a"


def test_codestral_suffix_first():
    f = get_format("codestral")
    assert f.build("a", "b") == "[SUFFIX]b[PREFIX]a"
    assert f.build("ab", "b").startswith(f.build("a", "b"))


def test_generic_psm_extra_as_comment():
    p = get_format("psm").build("x", "y", [ExtraChunk("k = 2", "k.py")])
    assert p == "<fim_prefix># k.py\nk = 2\nx<fim_suffix>y<fim_middle>"


def test_unknown_format_lists_known():
    with pytest.raises(ValueError, match="known: "):
        get_format("nope")


@pytest.mark.parametrize(
    ("vocab", "name", "expected"),
    [
        ({"<|fim_prefix|>"}, "", "qwen"),
        ({"<fim_prefix>"}, "", "starcoder"),
        ({"<｜fim▁begin｜>"}, "", "deepseek"),
        ({"[SUFFIX]", "[PREFIX]"}, "", "codestral"),
        ({"▁<PRE>"}, "", "codellama"),
        (set(), "Qwen2.5-Coder-1.5B", "qwen"),
        (set(), "something", "psm"),
    ],
)
def test_detect(vocab, name, expected):
    assert detect_format("", name, vocab).name == expected


def test_every_format_has_stop_tokens():
    for f in FORMATS.values():
        assert f.stop_tokens


def test_detection_prefers_trained_suffix_first_variant():
    assert detect_format("", "", {"<fim_prefix>"}, prefer_suffix_first=True).name == "starcoder-spm"
    assert detect_format("", "", {"<|fim_prefix|>"}, prefer_suffix_first=True).name == "qwen"  # PSM-only family
    assert detect_format("", "codellama-7b", set(), prefer_suffix_first=True).name == "codellama-spm"
