"""Property tests: a refused edit leaves the file byte-identical; an applied edit keeps line endings and the
final-newline state."""

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghostline.apply import apply_edit

LINES = ["def f(x):", "    return x", "", "x = 1", "    y = x + 1", "\tz = 'q'", "# note", "print(\u201chi\u201d)",
         "  ", "    ...", "if x:", "        pass"]

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def files(draw):
    lines = draw(st.lists(st.sampled_from(LINES), min_size=0, max_size=14))
    style = draw(st.sampled_from(["\n", "\r\n", "mixed"]))
    final = draw(st.booleans())
    bom = draw(st.booleans())
    out = []
    for k, ln in enumerate(lines):
        last = k == len(lines) - 1
        if last and not final:
            out.append(ln)
            break
        nl = style if style != "mixed" else draw(st.sampled_from(["\n", "\r\n"]))
        out.append(ln + nl)
    text = "".join(out)
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"), lines


@st.composite
def edits(draw, lines):
    if lines and draw(st.booleans()):
        i = draw(st.integers(0, len(lines) - 1))
        j = draw(st.integers(i + 1, len(lines)))
        old_lines = list(lines[i:j])
        tweak = draw(st.sampled_from(["none", "indent", "trailing", "curly", "typo"]))
        if tweak == "indent":
            old_lines = ["  " + ln for ln in old_lines]
        elif tweak == "trailing":
            old_lines = [ln + " " for ln in old_lines]
        elif tweak == "curly":
            old_lines = [ln.replace("'", "\u2019") for ln in old_lines]
        elif tweak == "typo" and old_lines and len(old_lines[0]) > 3:
            old_lines[0] = old_lines[0][:-1]
        old = "\n".join(old_lines) + draw(st.sampled_from(["", "\n"]))
    else:
        old = draw(st.text(alphabet="abc xy\n\t'", min_size=1, max_size=20))
    new = "\n".join(draw(st.lists(st.sampled_from(LINES + ["NEW LINE"]), max_size=4)))
    new += draw(st.sampled_from(["", "\n"]))
    return old, new, draw(st.booleans()), draw(st.sampled_from(["a.txt", "a.py"]))


def newline_kinds(data: bytes) -> set[str]:
    kinds = set()
    if b"\r\n" in data:
        kinds.add("crlf")
    if re.search(rb"(?<!\r)\n", data):
        kinds.add("lf")
    return kinds


@SETTINGS
@given(data=st.data())
def test_refused_is_byte_identical_and_applied_keeps_style(tmp_path, data):
    raw, lines = data.draw(files())
    old, new, replace_all, name = data.draw(edits(lines))
    p = tmp_path / name
    p.write_bytes(raw)
    r = apply_edit(p, old, new, replace_all=replace_all)
    after = p.read_bytes()
    if not r.applied:
        assert after == raw, r
        return
    body, abody = raw.removeprefix(b"\xef\xbb\xbf"), after.removeprefix(b"\xef\xbb\xbf")
    assert raw.startswith(b"\xef\xbb\xbf") == after.startswith(b"\xef\xbb\xbf")
    # The file keeps its final newline (or its lack of one) where the edit left its last line alone (a last line
    # replaced by line breaks cannot end without one).
    last = body.rstrip().rsplit(b"\n", 1)[-1].strip()
    if body and abody and last and abody.rstrip().endswith(last):
        assert body.endswith(b"\n") == abody.endswith(b"\n"), (raw, after)
    before_kinds = newline_kinds(body)
    after_kinds = newline_kinds(abody)
    assert after_kinds <= (before_kinds or {"lf"}), (raw, after)


@SETTINGS
@given(data=st.data())
def test_atomic_multi_block_refusal_is_byte_identical(tmp_path, data):
    from ghostline.apply import Block, apply_blocks

    raw, lines = data.draw(files())
    blocks = []
    for k in range(data.draw(st.integers(1, 3))):
        old, new, _all, _name = data.draw(edits(lines))
        blocks.append(Block(old, new, index=k))
    p = tmp_path / "m.txt"
    p.write_bytes(raw)
    results = apply_blocks(p, blocks, atomic=True)
    if not all(r.applied for r in results):
        assert p.read_bytes() == raw
        assert not any(r.applied and r.rung != "no-op" for r in results)
