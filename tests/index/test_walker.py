"""The one repository walk and its ignore rule (index, grep/glob tools, classical completions)."""

from __future__ import annotations

from pathlib import Path

from ghostline.index.walker import ALL_FILES, INDEX_FILES, FileFilter, IgnoreRules, relative_path, walk


def make(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)


def paths(rules: IgnoreRules, files: FileFilter = ALL_FILES, under: str = "") -> list[str]:
    return [f.path for f in walk(rules, under, files)]


def test_git_precedence_deeper_files_and_last_patterns_win(tmp_path: Path) -> None:
    make(tmp_path, {
        ".git/info/exclude": "local.txt\nkept_by_root.txt\n",
        ".gitignore": "*.log\n!kept_by_root.txt\nbuild/\n",
        "sub/.gitignore": "!keep.log\n",
        "a.log": "x", "sub/keep.log": "x", "sub/drop.log": "x", "local.txt": "x", "kept_by_root.txt": "x",
        "build/out.py": "x", "src/build/deep.py": "x", "src/main.py": "x",
    })
    rules = IgnoreRules(tmp_path)
    assert paths(rules) == [".gitignore", "kept_by_root.txt", "src/main.py", "sub/.gitignore", "sub/keep.log"]
    assert rules.ignored_anywhere("build/new/file.py") and not rules.ignored_anywhere("sub/keep.log")
    assert rules.ignored_anywhere("node_modules", is_dir=True)


def test_rules_above_the_root_apply_up_to_the_repository_root(tmp_path: Path) -> None:
    make(tmp_path, {
        ".gitignore": "secret*\n",  # above the repository: never applies
        "repo/.git/HEAD": "ref", "repo/.gitignore": "gen/\n",
        "repo/src/gen/g.py": "x", "repo/src/secret.py": "x", "repo/src/a.py": "x",
    })
    assert paths(IgnoreRules(tmp_path / "repo" / "src")) == ["a.py", "secret.py"]
    # named explicitly (grep's path), an ignored directory is walked; its own rules still hold
    make(tmp_path, {"repo/src/gen/.gitignore": "*.tmp\n", "repo/src/gen/t.tmp": "x"})
    assert paths(IgnoreRules(tmp_path / "repo" / "src" / "gen", explicit=True)) == [".gitignore", "g.py"]


def test_skip_names_filters_and_symlinks(tmp_path: Path) -> None:
    make(tmp_path, {
        ".venv/lib.py": "x", "node_modules/m.js": "x", ".hidden/h.py": "x", "img.png": b"\x89PNG",
        "empty.py": "", "big.txt": "x" * 50, "a.py": "x",
    })
    (tmp_path / "link.py").symlink_to(tmp_path / "a.py")
    (tmp_path / "linkdir").symlink_to(tmp_path / ".hidden")
    assert paths(IgnoreRules(tmp_path), INDEX_FILES) == [".hidden/h.py", "a.py", "big.txt"]
    assert paths(IgnoreRules(tmp_path), FileFilter(max_bytes=10)) == [".hidden/h.py", "a.py"]
    everything = paths(IgnoreRules(tmp_path, skip=frozenset({".git"})))
    assert everything == [".hidden/h.py", ".venv/lib.py", "a.py", "big.txt", "empty.py", "img.png", "node_modules/m.js"]
    assert paths(IgnoreRules(tmp_path), under=".hidden") == [".hidden/h.py"]


def test_relative_path(tmp_path: Path) -> None:
    assert relative_path(tmp_path, tmp_path / "a" / "b.py") == "a/b.py"
    assert relative_path(tmp_path, "a/../c.py") == "c.py"
    assert relative_path(tmp_path, tmp_path.parent / "x.py") is None and relative_path(tmp_path, ".") is None
