"""A tiny offline run of bench/apply_bench.py (two local source trees, no aider): the harness works and the
applier makes no wrong apply on it."""

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a benchmark smoke run: deselect locally with -m "not slow"

ROOT = Path(__file__).resolve().parents[2]

V1 = '''import os
import sys


def parse(argv):
    """Parse the arguments."""
    out = []
    for a in argv:
        if a.startswith("--"):
            out.append(a[2:])
    return out


class Loader:
    def __init__(self, path):
        self.path = path
        self.cache = {}

    def load(self, name):
        if name in self.cache:
            return self.cache[name]
        with open(os.path.join(self.path, name)) as fh:
            data = fh.read()
        self.cache[name] = data
        return data

    def clear(self):
        self.cache = {}


def main():
    args = parse(sys.argv[1:])
    print("args:", args)
    return 0
'''

V2 = (V1.replace('            out.append(a[2:])\n', '            out.append(a[2:].strip())\n')
      .replace("        self.cache = {}\n\n    def load", "        self.cache = {}\n        self.hits = 0\n\n    def load")
      .replace("            return self.cache[name]\n", "            self.hits += 1\n            return self.cache[name]\n")
      .replace('        self.cache = {}\n\n\ndef main', '        self.cache.clear()\n        self.hits = 0\n\n\ndef main')
      .replace('    print("args:", args)\n', '    print("args: %s" % args)\n'))


def test_bench_runs_offline(tmp_path):
    for ver, text in (("v1", V1), ("v2", V2)):
        (tmp_path / ver).mkdir()
        (tmp_path / ver / "mod.py").write_text(text)
    spec = importlib.util.spec_from_file_location("apply_bench", ROOT / "bench" / "apply_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "out.json"
    rc = bench.main(["--from-dirs", str(tmp_path / "v1"), str(tmp_path / "v2"), "--no-aider", "--per-mode", "3",
                     "--out", str(out)])
    assert rc == 0
    summary = json.loads(out.read_text())
    assert summary["cases"] > 5
    assert summary["ghostline"]["wrong"] == 0
    assert summary["ghostline"]["refused"] == summary["ghostline"]["must_refuse"]
