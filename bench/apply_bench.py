"""Edit-applier benchmark: Ghostline's ladder against aider's own matching functions, on real code.

    .venv/bin/python bench/apply_bench.py            # full run (downloads wheels and aider-chat once)
    .venv/bin/python bench/apply_bench.py --quick    # a small sample
    .venv/bin/python bench/apply_bench.py --from-dirs OLD NEW --no-aider   # offline, any two source trees

Corpus: two released versions of several PyPI packages are downloaded with pip (wheels, cached under
bench/.cache/), their ``.py`` files are diffed, and each real hunk becomes an edit (old text -> new text; context
is grown until the old text is unique).  Every failure mode of the ladder gets labelled perturbations of those
edits, and must-refuse cases are added (absent text, ambiguous text, hallucinated lines).  A fixed seed makes
the case set deterministic; the archives' and the case set's hashes are printed.

Baseline: aider (pip package ``aider-chat``, installed in its own venv under bench/.cache/aider-venv, never in
.venv) is run through a subprocess on the same cases: its ``do_replace`` / ``replace_most_similar_chunk`` with its
own file I/O convention (read in universal-newline text mode, write with the platform newline).

Rows: exact hunks; CRLF (+BOM) files; trailing whitespace, indentation (quoted at column 0 or one level deep),
extra blank lines, curly quotes/NBSP, ``...`` elisions and typos in the search text; repeated snippets with a
line hint; fenced unified diffs without line numbers; must-refuse: text from another package, a repeated
snippet without hint, invented lines, a replacement that breaks the syntax, a diff of another package.

Scoring per case: correct (applied, bytes equal the expected file), wrong (applied, bytes differ; any apply of a
must-refuse case), correct refusal (must-refuse case refused), miss (applicable case refused).  Times are the
best of ``--repeat`` runs per case, wall clock and CPU time of the applying thread (load-independent).
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from difflib import SequenceMatcher
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"
OUT = HERE / "out"
sys.path.insert(0, str(ROOT))

PAIRS = [
    ("requests", "2.31.0", "2.32.3"),
    ("click", "8.1.3", "8.1.7"),
    ("attrs", "23.1.0", "23.2.0"),
    ("packaging", "23.1", "24.1"),
    ("rich", "13.5.2", "13.7.1"),
    ("jinja2", "3.1.2", "3.1.4"),
    ("urllib3", "2.0.7", "2.2.2"),
    ("typing_extensions", "4.9.0", "4.12.2"),  # one 3,600-line module
    ("sqlalchemy", "2.0.25", "2.0.30"),  # modules of 4,000-7,800 lines
]
AIDER_SPEC = "aider-chat==0.86.2"

MODES = [
    "exact",
    "line-endings",
    "trailing-whitespace",
    "indentation",
    "blank-lines",
    "unicode",
    "elision",
    "fuzzy",
    "ambiguous+hint",
    "udiff",
]
REFUSE_MODES = ["refuse:absent", "refuse:ambiguous", "refuse:hallucinated", "refuse:syntax", "refuse:udiff-absent"]
UDIFF_NAME = "case.py"

INVENTED = [
    "result = _normalize_payload(result, strict=True)",
    "if self._closed:\n    raise RuntimeError('session closed')",
    "logger.debug('retrying %s', attempt)",
    "cache.invalidate(key)",
    "return self._fallback_handler(value)",
    "timeout = max(timeout, DEFAULT_MIN_TIMEOUT)",
]


# ------------------------------------------------------------------------------------------------ corpus


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download(pairs: list[tuple[str, str, str]]) -> dict[str, Path]:
    dest = CACHE / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    for name, *versions in pairs:
        for v in versions:
            key = f"{name}=={v}"
            hit = [p for p in dest.glob("*.whl") if _wheel_matches(p.name, name, v)]
            if not hit:
                env = dict(os.environ, PIP_CONSTRAINT="")
                subprocess.run(
                    [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d",
                     str(dest), key],
                    check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
                hit = [p for p in dest.glob("*.whl") if _wheel_matches(p.name, name, v)]
            if not hit:
                raise SystemExit(f"apply_bench: could not download {key}")
            found[key] = hit[0]
    return found


def _wheel_matches(fname: str, name: str, version: str) -> bool:
    parts = fname.split("-")
    return len(parts) > 2 and parts[0].lower().replace("_", "-") == name.lower().replace("_", "-") and parts[1] == version


def wheel_sources(path: Path) -> dict[str, str]:
    out = {}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if info.filename.endswith(".py") and ".dist-info/" not in info.filename:
                try:
                    out[info.filename] = z.read(info).decode("utf-8")
                except UnicodeDecodeError:
                    continue
    return out


def dir_sources(path: Path) -> dict[str, str]:
    out = {}
    for p in sorted(path.rglob("*.py")):
        try:
            out[str(p.relative_to(path))] = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
    return out


def keeplines(text: str) -> list[str]:
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def base_hunks(label: str, old_files: dict[str, str], new_files: dict[str, str]) -> list[dict]:
    hunks = []
    for rel in sorted(set(old_files) & set(new_files)):
        old_t, new_t = old_files[rel], new_files[rel]
        if old_t == new_t or "\r" in old_t or "\r" in new_t:
            continue
        a, b = keeplines(old_t), keeplines(new_t)
        if len(a) > 8000:
            continue
        sm = SequenceMatcher(None, a, b, autojunk=False)
        for group in sm.get_grouped_opcodes(3):
            lo, hi, jlo, jhi = group[0][1], group[-1][2], group[0][3], group[-1][4]
            for _ in range(10):
                old = "".join(a[lo:hi])
                if old.strip() and old_t.count(old) == 1:
                    break
                if lo > 0 and jlo > 0:
                    lo, jlo = lo - 1, jlo - 1
                if hi < len(a) and jhi < len(b):
                    hi, jhi = hi + 1, jhi + 1
            old = "".join(a[lo:hi])
            if not old.strip() or old_t.count(old) != 1:
                continue
            new = "".join(b[jlo:jhi])
            expected = "".join(a[:lo]) + new + "".join(a[hi:])
            if expected == old_t:
                continue
            mid = []  # equal runs strictly inside the group (for elisions)
            for tag, i1, i2, j1, j2 in group[1:-1]:
                if tag == "equal" and i2 - i1 >= 3:
                    mid.append((i1, i2, j1, j2))
            hunks.append({"file": f"{label}/{rel}", "text": old_t, "old": old, "new": new, "expected": expected,
                          "a": a, "b": b, "lo": lo, "hi": hi, "jlo": jlo, "jhi": jhi, "mid": mid})
    return hunks


# ------------------------------------------------------------------------------------------------ cases


def is_elision(line: str) -> bool:
    from ghostline.apply.ladder import is_elision as ghostline_is_elision

    return ghostline_is_elision(line)


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _case(mode: str, h: dict, old: str, new: str, expected: str | bytes | None, *, content: bytes | None = None,
          hint: int | None = None) -> dict:
    raw = content if content is not None else h["text"].encode("utf-8")
    exp = expected.encode("utf-8") if isinstance(expected, str) else expected
    return {"mode": mode, "file": h["file"], "content": raw, "old": old, "new": new, "expected": exp, "hint": hint,
            "lines": raw.count(b"\n") + 1}


def _typo(rng: random.Random, line: str) -> str | None:
    body = line.strip()
    if len(body) < 12:
        return None
    start = len(line) - len(line.lstrip())
    positions = [start + k for k, c in enumerate(body) if c.isalnum() and 2 <= k < len(body) - 1]
    if not positions:
        return None
    p = rng.choice(positions)
    op = rng.choice(["delete", "swap", "replace"])
    if op == "delete":
        return line[:p] + line[p + 1 :]
    if op == "swap" and line[p + 1 : p + 2].isalnum() and line[p] != line[p + 1]:
        return line[:p] + line[p + 1] + line[p] + line[p + 2 :]
    c = "x" if line[p] != "x" else "q"
    return line[:p] + c + line[p + 1 :]


def _curly(rng: random.Random, s: str) -> str:
    out = []
    for ch in s:
        if ch == "'":
            out.append(rng.choice("\u2018\u2019"))
        elif ch == '"':
            out.append(rng.choice("\u201c\u201d"))
        else:
            out.append(ch)
    return "".join(out)


def make_cases(hunks: list[dict], rng: random.Random, per_mode: int) -> list[dict]:
    cases: list[dict] = []
    pool = list(hunks)
    rng.shuffle(pool)

    def valid(h: dict) -> bool:
        """A real hunk applied alone must leave valid Python (some are half of a change split over hunks)."""
        if "valid" not in h:
            try:
                ast.parse(h["expected"])
                h["valid"] = True
            except (SyntaxError, ValueError):
                h["valid"] = False
        return h["valid"]

    def take(mode: str, gen) -> None:
        n = 0
        for h in pool:
            if n >= per_mode:
                break
            if not valid(h):
                continue
            c = gen(h)
            if c is not None:
                cases.append(c)
                n += 1

    take("exact", lambda h: _case("exact", h, h["old"], h["new"], h["expected"]))

    def crlf(h: dict) -> dict | None:
        bom = b"\xef\xbb\xbf" if rng.random() < 0.5 else b""
        content = bom + h["text"].replace("\n", "\r\n").encode("utf-8")
        expected = bom + h["expected"].replace("\n", "\r\n").encode("utf-8")
        return _case("line-endings", h, h["old"], h["new"], expected, content=content)

    take("line-endings", crlf)

    def trailing(h: dict) -> dict | None:
        lines = keeplines(h["old"])
        idx = [k for k, ln in enumerate(lines) if ln.strip()]
        if not idx:
            return None
        for k in rng.sample(idx, min(len(idx), rng.randint(1, 3))):
            ln = lines[k]
            nl = "\n" if ln.endswith("\n") else ""
            lines[k] = ln.rstrip("\n") + rng.choice([" ", "  ", "\t", "   "]) + nl
        old = "".join(lines)
        if old in h["text"]:
            return None
        return _case("trailing-whitespace", h, old, h["new"], h["expected"])

    take("trailing-whitespace", trailing)

    def indentation(h: dict) -> dict | None:
        old_l, new_l = keeplines(h["old"]), keeplines(h["new"])
        nb_old = [ln for ln in old_l if ln.strip()]
        nb_new = [ln for ln in new_l if ln.strip()]
        if not nb_old or any("\t" in _indent(ln) for ln in nb_old + nb_new):
            return None
        mi = min(len(_indent(ln)) for ln in nb_old)
        if mi < 4 or any(len(_indent(ln)) < mi for ln in nb_new):
            return None
        if rng.random() < 0.6:  # quoted at column 0
            def f(ln: str) -> str:
                return ln[mi:] if ln.strip() else ln
        else:  # one level too deep

            def f(ln: str) -> str:
                return "    " + ln if ln.strip() else ln
        old = "".join(f(ln) for ln in old_l)
        new = "".join(f(ln) for ln in new_l)
        if old in h["text"]:
            return None
        return _case("indentation", h, old, new, h["expected"])

    take("indentation", indentation)

    def blank(h: dict) -> dict | None:
        both = rng.random() < 0.5
        lead, trail = rng.choice([(1, 0), (1, 1), (2, 1), (0, 1)])
        old = "\n" * lead + h["old"] + "\n" * trail
        new = ("\n" * lead + h["new"] + "\n" * trail) if both else h["new"]
        if old in h["text"] or not h["old"].endswith("\n"):
            return None
        return _case("blank-lines", h, old, new, h["expected"])

    take("blank-lines", blank)

    def unicode(h: dict) -> dict | None:
        if "'" not in h["old"] and '"' not in h["old"]:
            return None
        old = _curly(rng, h["old"])
        lines = keeplines(old)
        for k, ln in enumerate(lines):
            body = ln.strip()
            if " " in body and rng.random() < 0.3:
                p = ln.index(" ", len(_indent(ln)))
                lines[k] = ln[:p] + "\u00a0" + ln[p + 1 :]
        old = "".join(lines)
        if old in h["text"]:
            return None
        return _case("unicode", h, old, h["new"], h["expected"])

    take("unicode", unicode)

    def elision(h: dict) -> dict | None:
        if not h["mid"]:
            return None
        i1, i2, j1, j2 = h["mid"][0]
        a, b = h["a"], h["b"]
        # an elision next to literal "..." code is ambiguous by construction, and one with nothing before or
        # after it anchors nothing: not applicable cases
        if any(is_elision(ln) for ln in a[h["lo"] : h["hi"]] + b[h["jlo"] : h["jhi"]]):
            return None
        if not "".join(a[h["lo"] : i1]).strip() or not "".join(a[i2 : h["hi"]]).strip():
            return None
        dots = _indent(a[i1]) + "...\n"
        old = "".join(a[h["lo"] : i1]) + dots + "".join(a[i2 : h["hi"]])
        new = "".join(b[h["jlo"] : j1]) + dots + "".join(b[j2 : h["jhi"]])
        if old in h["text"]:
            return None
        return _case("elision", h, old, new, h["expected"])

    take("elision", elision)

    def fuzzy(h: dict) -> dict | None:
        lines = keeplines(h["old"])
        nb = [k for k, ln in enumerate(lines) if len(ln.strip()) >= 12]
        if sum(1 for ln in lines if ln.strip()) < 4 or not nb:
            return None
        for k in rng.sample(nb, 1 if len(lines) < 8 else min(2, len(nb))):
            t = _typo(rng, lines[k])
            if t is None:
                return None
            lines[k] = t
        old = "".join(lines)
        if old in h["text"]:
            return None
        return _case("fuzzy", h, old, h["new"], h["expected"])

    take("fuzzy", fuzzy)

    # repeated snippets: hint-disambiguated applies, and must-refuse ambiguity
    def repeated(h: dict) -> tuple[str, list[int]] | None:
        text = h["text"]
        lines = keeplines(text)
        counts: dict[str, int] = defaultdict(int)
        for ln in lines:
            if len(ln.strip()) >= 10 and ln.endswith("\n"):
                counts[ln] += 1
        reps = sorted(ln for ln, c in counts.items() if c >= 2)
        if not reps:
            return None
        ln = rng.choice(reps)
        hits = []
        pos = text.find(ln)
        while pos != -1:
            hits.append(pos)
            pos = text.find(ln, pos + 1)
        return ln, hits

    def line_of(text: str, off: int) -> int:
        return text.count("\n", 0, off) + 1

    def hinted(h: dict) -> dict | None:
        r = repeated(h)
        if r is None:
            return None
        ln, hits = r
        text = h["text"]
        starts = [p for p in hits if p == 0 or text[p - 1] == "\n"]
        if not starts:
            return None
        target = rng.choice(starts)
        tl = line_of(text, target)
        others = [line_of(text, p) for p in hits if p != target]
        gap = min(abs(o - tl) for o in others)
        if gap < 2:
            return None
        off = rng.randint(-((gap - 1) // 2), (gap - 1) // 2)
        new = ln.rstrip("\n") + "  # patched\n"
        expected = text[:target] + new + text[target + len(ln) :]
        return _case("ambiguous+hint", h, ln, new, expected, hint=max(1, tl + off))

    take("ambiguous+hint", hinted)

    def ambiguous(h: dict) -> dict | None:
        r = repeated(h)
        if r is None:
            return None
        ln, _hits = r
        return _case("refuse:ambiguous", h, ln, ln.rstrip("\n") + "  # patched\n", None)

    take("refuse:ambiguous", ambiguous)

    def absent(h: dict) -> dict | None:
        other = rng.choice(pool)
        if other["file"].split("/")[0] == h["file"].split("/")[0]:
            return None
        old = other["old"]
        if sum(1 for ln in old.split("\n") if ln.strip()) < 3:
            return None
        text_lines = {ln.strip() for ln in h["text"].split("\n")}
        old_lines = [ln.strip() for ln in old.split("\n") if ln.strip()]
        if sum(1 for ln in old_lines if ln in text_lines) * 2 >= len(old_lines):
            return None
        return _case("refuse:absent", h, old, other["new"], None)

    take("refuse:absent", absent)

    def hallucinated(h: dict) -> dict | None:
        old_l, new_l = keeplines(h["old"]), keeplines(h["new"])
        if sum(1 for ln in old_l if ln.strip()) < 3 or not h["old"].endswith("\n"):
            return None
        # insert invented lines after a context line present in both old and new
        common = [k for k in range(1, len(old_l)) if old_l[k].strip() and old_l[k] in new_l]
        if not common:
            return None
        k = rng.choice(common)
        ind = _indent(old_l[k])
        inv = "".join(ind + x + "\n" for x in rng.choice(INVENTED).split("\n"))
        kn = new_l.index(old_l[k])
        old = "".join(old_l[:k]) + inv + "".join(old_l[k:])
        new = "".join(new_l[:kn]) + inv + "".join(new_l[kn:])
        return _case("refuse:hallucinated", h, old, new, None)

    take("refuse:hallucinated", hallucinated)

    def breaks_syntax(h: dict) -> dict | None:
        """The right place, but a replacement that no longer parses (an unclosed bracket): the guard's case."""
        new_l = keeplines(h["new"])
        idx = [k for k, ln in enumerate(new_l) if ln.strip() and not ln.strip().startswith("#")]
        if not idx or not h["new"].endswith("\n"):
            return None
        k = rng.choice(idx)
        new_l[k] = new_l[k].rstrip("\n") + rng.choice(["(", "[", "{"]) + "\n"
        new = "".join(new_l)
        try:
            ast.parse(h["expected"].replace(h["new"], new, 1))
            return None  # still valid (the bracket landed in a string or comment)
        except SyntaxError:
            pass
        return _case("refuse:syntax", h, h["old"], new, None)

    take("refuse:syntax", breaks_syntax)

    # unified diffs as models write them (aider's udiff format): fenced, no line numbers, blank context lines
    # without their leading space.  Ghostline parses them with apply_text, aider with find_diffs + do_replace.
    def diff_text(h: dict) -> str | None:
        a_seg, b_seg = h["a"][h["lo"] : h["hi"]], h["b"][h["jlo"] : h["jhi"]]
        if not a_seg or not a_seg[-1].endswith("\n") or (b_seg and not b_seg[-1].endswith("\n")):
            return None
        body = []
        for tag, i1, i2, j1, j2 in SequenceMatcher(None, a_seg, b_seg, autojunk=False).get_opcodes():
            if tag == "equal":
                body += [(" " + ln) if ln.strip() else "\n" for ln in a_seg[i1:i2]]
            else:
                body += ["-" + ln for ln in a_seg[i1:i2]] + ["+" + ln for ln in b_seg[j1:j2]]
        return f"```diff\n--- {UDIFF_NAME}\n+++ {UDIFF_NAME}\n@@ ... @@\n" + "".join(body) + "```\n"

    def udiff(h: dict) -> dict | None:
        d = diff_text(h)
        if d is None:
            return None
        c = _case("udiff", h, "", "", h["expected"])
        c["diff"] = d
        return c

    take("udiff", udiff)

    def udiff_absent(h: dict) -> dict | None:
        other = rng.choice(pool)
        if other["file"].split("/")[0] == h["file"].split("/")[0] or other["old"] in h["text"]:
            return None
        old_lines = [ln.strip() for ln in other["old"].split("\n") if ln.strip()]
        text_lines = {ln.strip() for ln in h["text"].split("\n")}
        if len(old_lines) < 3 or sum(1 for ln in old_lines if ln in text_lines) * 2 >= len(old_lines):
            return None
        d = diff_text(other)
        if d is None:
            return None
        c = _case("refuse:udiff-absent", h, "", "", None)
        c["diff"] = d
        return c

    take("refuse:udiff-absent", udiff_absent)
    for i, c in enumerate(cases):
        c["id"] = i
    return cases


def cases_digest(cases: list[dict]) -> str:
    h = hashlib.sha256()
    for c in cases:
        h.update(json.dumps([c["mode"], c["file"], c["old"], c["new"], c["hint"], c.get("diff")]).encode())
        h.update(c["content"])
        h.update(c["expected"] or b"-")
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ runners


def run_ghostline(cases: list[dict], repeat: int = 3) -> list[dict]:
    from ghostline.apply import apply_edit, apply_text, syntax
    from ghostline.apply.textfile import TextFile

    class Outcome:
        def __init__(self, applied: bool, rung: str) -> None:
            self.applied, self.rung = applied, rung

    def run(c: dict, path: Path, root: Path, dry_run: bool) -> Outcome:
        if "diff" in c:
            rs = apply_text(c["diff"], root, "udiff", dry_run=dry_run)
            return Outcome(bool(rs) and all(r.applied for r in rs), ",".join(r.rung for r in rs))
        r = apply_edit(path, c["old"], c["new"], line_hint=c["hint"], dry_run=dry_run)
        return Outcome(r.applied, r.rung)

    out = []
    with tempfile.TemporaryDirectory(prefix="apply-bench-") as tmp:
        root = Path(tmp)
        for c in cases:
            path = root / UDIFF_NAME
            path.write_bytes(c["content"])
            norm = TextFile.from_bytes(c["content"]).norm
            # Each timing is the best of `repeat` runs (scheduler noise removed; the work is deterministic).
            # CPU time of this thread is also kept: it does not count time spent waiting for a CPU on a loaded
            # machine, so it is the load-independent cost.
            t_warm = t_check = dt = cpu = float("inf")
            for _ in range(repeat):
                # syntax tree prefetched (as after a read that prefetched it), dry run
                syntax.clear_cache()
                syntax.prefetch(path, norm)
                t0 = time.perf_counter()
                run(c, path, root, True)
                t_warm = min(t_warm, time.perf_counter() - t0)
                # cold, dry run: everything but the write
                syntax.clear_cache()
                t0 = time.perf_counter()
                run(c, path, root, True)
                t_check = min(t_check, time.perf_counter() - t0)
            for k in range(repeat):
                # cold, for real (the last result is scored)
                if k:
                    path.write_bytes(c["content"])
                syntax.clear_cache()
                t0, c0 = time.perf_counter(), time.thread_time()
                r = run(c, path, root, False)
                dt = min(dt, time.perf_counter() - t0)
                cpu = min(cpu, time.thread_time() - c0)
            after = path.read_bytes()
            if not r.applied and after != c["content"]:
                out.append({"id": c["id"], "applied": True, "result": after, "time": dt, "rung": "MODIFIED-ON-REFUSAL",
                            "t_check": t_check, "t_warm": t_warm, "cpu": cpu})
            else:
                out.append({"id": c["id"], "applied": r.applied, "result": after if r.applied else None, "time": dt,
                            "rung": r.rung, "t_check": t_check, "t_warm": t_warm, "cpu": cpu})
            path.unlink()
    return out


AIDER_RUNNER = r'''
import base64, json, sys, time
from pathlib import Path
from aider.coders.editblock_coder import DEFAULT_FENCE, do_replace
from aider.coders import udiff_coder

fname = Path(__file__)  # do_replace only checks that the file exists


def apply(c, content):
    if c.get("diff"):  # as UnifiedDiffCoder.get_edits + apply_edits
        res = content
        for _path, hunk in udiff_coder.find_diffs(c["diff"]):
            hunk = udiff_coder.normalize_hunk(hunk)
            if not hunk:
                continue
            res = udiff_coder.do_replace(fname, res, hunk)
            if not res:
                return None
        return res
    return do_replace(fname, content, c["old"], c["new"], DEFAULT_FENCE)  # as EditBlockCoder.apply_edits


for line in sys.stdin:
    c = json.loads(line)
    raw = base64.b64decode(c["content"])
    # aider's InputOutput.read_text: open(..., "r", encoding="utf-8") -> universal newlines
    content = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    dt = float("inf")
    for _rep in range(int(sys.argv[1])):  # best of N, like Ghostline's timings
        t0 = time.perf_counter()
        try:
            res, err = apply(c, content), None
        except Exception as exc:  # aider raises ValueError / SearchTextNotUnique: a refusal
            res, err = None, type(exc).__name__
        dt = min(dt, time.perf_counter() - t0)
    if res is None or res == content:
        out = {"id": c["id"], "applied": False, "result": None, "time": dt, "error": err}
    else:
        # aider's InputOutput.write_text: open(..., "w", encoding="utf-8", newline=None) -> "\n" on Linux
        out = {"id": c["id"], "applied": True, "result": base64.b64encode(res.encode("utf-8")).decode(), "time": dt}
    print(json.dumps(out), flush=True)
'''


def ensure_aider() -> Path:
    venv = CACHE / "aider-venv"
    py = venv / "bin" / "python"
    ok = py.exists() and subprocess.run([str(py), "-c", "import aider.coders.editblock_coder"],
                                        capture_output=True).returncode == 0
    if not ok:
        print(f"installing {AIDER_SPEC} into {venv} (once) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        env = dict(os.environ, PIP_CONSTRAINT="")
        subprocess.run([str(py), "-m", "pip", "install", "-q", AIDER_SPEC], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return py


def run_aider(cases: list[dict], repeat: int = 3) -> tuple[list[dict], str]:
    py = ensure_aider()
    version = subprocess.run([str(py), "-c", "import aider; print(aider.__version__)"], capture_output=True,
                             text=True).stdout.strip()
    runner = CACHE / "aider_runner.py"
    runner.write_text(AIDER_RUNNER)
    payload = "".join(
        json.dumps({"id": c["id"], "content": base64.b64encode(c["content"]).decode(), "old": c["old"],
                    "new": c["new"], "diff": c.get("diff")}) + "\n"
        for c in cases
    )
    proc = subprocess.run([str(py), str(runner), str(repeat)], input=payload, capture_output=True, text=True, check=True)
    out = []
    errors: dict[str, int] = defaultdict(int)
    for line in proc.stdout.splitlines():
        r = json.loads(line)
        if r.get("error"):
            errors[r["error"]] += 1
        r["result"] = base64.b64decode(r["result"]) if r["result"] else None
        out.append(r)
    if errors:
        print(f"aider raised on some cases (counted as refusals): {dict(errors)}", file=sys.stderr)
    if len(out) != len(cases):
        raise SystemExit(f"apply_bench: aider runner returned {len(out)} of {len(cases)} results: {proc.stderr[-500:]}")
    return out, version


# ------------------------------------------------------------------------------------------------ scoring


def score(cases: list[dict], results: list[dict]) -> dict[str, dict]:
    by_id = {r["id"]: r for r in results}
    rows: dict[str, dict] = {}
    for c in cases:
        r = by_id[c["id"]]
        row = rows.setdefault(c["mode"], {"n": 0, "correct": 0, "wrong": 0, "refused_ok": 0, "miss": 0, "times": [],
                                          "wrong_ids": []})
        row["n"] += 1
        row["times"].append(r["time"])
        if c["expected"] is None:
            if r["applied"]:
                row["wrong"] += 1
                row["wrong_ids"].append(c["id"])
            else:
                row["refused_ok"] += 1
        elif not r["applied"]:
            row["miss"] += 1
        elif r["result"] == c["expected"]:
            row["correct"] += 1
        else:
            row["wrong"] += 1
            row["wrong_ids"].append(c["id"])
    return rows


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--per-mode", type=int, default=150, help="cases per failure mode")
    ap.add_argument("--quick", action="store_true", help="3 packages, 25 cases per mode")
    ap.add_argument("--no-aider", action="store_true", help="skip the aider baseline")
    ap.add_argument("--from-dirs", nargs=2, metavar=("OLD", "NEW"), help="diff two local trees instead of wheels")
    ap.add_argument("--out", type=Path, default=OUT / "apply_bench.json")
    ap.add_argument("--repeat", type=int, default=3, help="time each case this many times, keep the best")
    ap.add_argument("--show-wrong", action="store_true", help="print the wrong cases of Ghostline")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    per_mode = 25 if args.quick else args.per_mode

    hunks: list[dict] = []
    corpus_info = []
    if args.from_dirs:
        old_d, new_d = (Path(p) for p in args.from_dirs)
        hunks = base_hunks("local", dir_sources(old_d), dir_sources(new_d))
        corpus_info.append({"old": str(old_d), "new": str(new_d)})
    else:
        pairs = PAIRS[:3] if args.quick else PAIRS
        wheels = download(pairs)
        for name, v1, v2 in pairs:
            w1, w2 = wheels[f"{name}=={v1}"], wheels[f"{name}=={v2}"]
            for w in (w1, w2):
                corpus_info.append({"wheel": w.name, "sha256": sha256(w)})
                print(f"  {w.name:<50} sha256 {sha256(w)[:16]}")
            hunks.extend(base_hunks(f"{name}-{v1}..{v2}", wheel_sources(w1), wheel_sources(w2)))
    if not hunks:
        print("apply_bench: no hunks in the corpus", file=sys.stderr)
        return 2
    cases = make_cases(hunks, rng, per_mode)
    digest = cases_digest(cases)
    print(f"{len(hunks)} real hunks, {len(cases)} cases, seed {args.seed}, case-set sha256 {digest[:16]}")

    gl = run_ghostline(cases, args.repeat)
    gl_rows = score(cases, gl)
    aider_rows: dict[str, dict] = {}
    aider_version = None
    if not args.no_aider:
        ad, aider_version = run_aider(cases, args.repeat)
        aider_rows = score(cases, ad)

    modes = [m for m in MODES + REFUSE_MODES if m in gl_rows]
    hdr = f"{'failure mode':<22}{'n':>5} | {'GL ok':>6}{'wrong':>6}{'refuse':>7}{'miss':>6}"
    if aider_rows:
        hdr += f" | {'aider ok':>8}{'wrong':>6}{'refuse':>7}{'miss':>6} | {'ok ratio':>8}"
    print()
    print(hdr)
    print("-" * len(hdr))
    table = []
    for m in modes:
        g = gl_rows[m]
        line = f"{m:<22}{g['n']:>5} | {g['correct']:>6}{g['wrong']:>6}{g['refused_ok']:>7}{g['miss']:>6}"
        row = {"mode": m, "n": g["n"], "ghostline": {k: g[k] for k in ("correct", "wrong", "refused_ok", "miss")}}
        if aider_rows:
            a = aider_rows[m]
            good_g = g["correct"] + g["refused_ok"]
            good_a = a["correct"] + a["refused_ok"]
            ratio = f"{good_g / good_a:.2f}x" if good_a else ("inf" if good_g else "-")
            line += f" | {a['correct']:>8}{a['wrong']:>6}{a['refused_ok']:>7}{a['miss']:>6} | {ratio:>8}"
            row["aider"] = {k: a[k] for k in ("correct", "wrong", "refused_ok", "miss")}
        print(line)
        table.append(row)
    applicable = [gl_rows[m] for m in modes if not m.startswith("refuse:")]
    n_app = sum(r["n"] for r in applicable)
    n_ok = sum(r["correct"] for r in applicable)
    n_wrong = sum(gl_rows[m]["wrong"] for m in modes)
    refuse_total = sum(gl_rows[m]["n"] for m in modes if m.startswith("refuse:"))
    refuse_ok = sum(gl_rows[m]["refused_ok"] for m in modes if m.startswith("refuse:"))
    times = [r["time"] for r in gl]
    small = [r["time"] for r, c in zip(gl, cases, strict=True) if c["lines"] <= 5000]
    checks = [r["t_check"] for r, c in zip(gl, cases, strict=True) if c["lines"] <= 5000]
    warms = [r["t_warm"] for r, c in zip(gl, cases, strict=True) if c["lines"] <= 5000]
    print()
    print(f"Ghostline: correct {n_ok}/{n_app} applicable ({n_ok / max(1, n_app):.1%}), wrong {n_wrong}, "
          f"must-refuse refused {refuse_ok}/{refuse_total}")
    print(f"Ghostline apply time, files <= 5000 lines (largest {max(c['lines'] for c in cases)}), load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs:")
    cpus = [r["cpu"] for r, c in zip(gl, cases, strict=True) if c["lines"] <= 5000]
    print(f"  cold, read + ladder + syntax guard + atomic write: p50 {pct(small, .5) * 1e3:.2f} ms, "
          f"p95 {pct(small, .95) * 1e3:.2f} ms")
    print(f"  the same, CPU time (load-independent):            p50 {pct(cpus, .5) * 1e3:.2f} ms, "
          f"p95 {pct(cpus, .95) * 1e3:.2f} ms")
    print(f"  cold, dry run (no write):                         p50 {pct(checks, .5) * 1e3:.2f} ms, "
          f"p95 {pct(checks, .95) * 1e3:.2f} ms")
    print(f"  syntax tree prefetched, dry run:                  p50 {pct(warms, .5) * 1e3:.2f} ms, "
          f"p95 {pct(warms, .95) * 1e3:.2f} ms")
    buckets = [(0, 1000), (1000, 3000), (3000, 5000), (5000, 10**9)]
    by_size = []
    for lo, hi in buckets:
        sel = [r for r, c in zip(gl, cases, strict=True) if lo < c["lines"] <= hi]
        if not sel:
            continue
        label = f"{lo + 1}-{hi}" if hi < 10**9 else f">{lo}"
        row = {"lines": label, "n": len(sel), "p50_ms": pct([r["time"] for r in sel], .5) * 1e3,
               "p95_ms": pct([r["time"] for r in sel], .95) * 1e3,
               "p95_cpu_ms": pct([r["cpu"] for r in sel], .95) * 1e3,
               "p95_ms_prefetched": pct([r["t_warm"] for r in sel], .95) * 1e3}
        by_size.append(row)
        print(f"  file lines {label:>10}: n {row['n']:>4}, cold p50 {row['p50_ms']:.2f} ms, p95 {row['p95_ms']:.2f} ms"
              f" (CPU {row['p95_cpu_ms']:.2f} ms); prefetched p95 {row['p95_ms_prefetched']:.2f} ms")
    summary = {
        "seed": args.seed,
        "cases": len(cases),
        "case_sha256": digest,
        "corpus": corpus_info,
        "table": table,
        "ghostline": {"correct": n_ok, "applicable": n_app, "wrong": n_wrong, "refused": refuse_ok,
                      "must_refuse": refuse_total,
                      "p50_ms": pct(times, .5) * 1e3, "p95_ms": pct(times, .95) * 1e3,
                      "p95_ms_le_5000_lines": pct(small, .95) * 1e3,
                      "p95_ms_dry_run": pct(checks, .95) * 1e3, "p95_ms_prefetched": pct(warms, .95) * 1e3,
                      "p95_cpu_ms_le_5000_lines": pct(cpus, .95) * 1e3,
                      "loadavg": os.getloadavg()[0], "by_size": by_size},
    }
    if aider_rows:
        at = [t for m in modes for t in aider_rows[m]["times"]]
        a_ok = sum(aider_rows[m]["correct"] for m in modes if not m.startswith("refuse:"))
        a_wrong = sum(aider_rows[m]["wrong"] for m in modes)
        print(f"aider {aider_version} (do_replace, in memory): correct {a_ok}/{n_app} ({a_ok / max(1, n_app):.1%}), "
              f"wrong {a_wrong}; p50 {pct(at, .5) * 1e3:.2f} ms, p95 {pct(at, .95) * 1e3:.2f} ms")
        print(f"correct ratio Ghostline/aider on applicable cases: {n_ok / max(1, a_ok):.2f}x")
        summary["aider"] = {"version": aider_version, "correct": a_ok, "wrong": a_wrong,
                            "p50_ms": pct(at, .5) * 1e3, "p95_ms": pct(at, .95) * 1e3}
    if args.show_wrong:
        by_id = {c["id"]: c for c in cases}
        for m in modes:
            for i in gl_rows[m]["wrong_ids"]:
                c = by_id[i]
                print(f"\n--- WRONG {m} #{i} {c['file']}\nOLD:\n{c['old']}\nNEW:\n{c['new']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
