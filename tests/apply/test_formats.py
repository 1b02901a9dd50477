"""Parsing and applying model text: SEARCH/REPLACE, unified diff, Codex patch, whole file, edit JSON."""

import json

import pytest

from ghostline.apply import ParseError, apply_text, detect, parse

SRC = '''import os


def load(path):
    with open(path) as fh:
        return fh.read()


def save(path, data):
    with open(path, "w") as fh:
        fh.write(data)
'''


@pytest.fixture
def root(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "io_utils.py").write_text(SRC)
    return tmp_path


def read(root):
    return (root / "pkg" / "io_utils.py").read_text()


def test_search_replace_lenient_markers_fences_and_filename_reuse(root):
    text = '''Sure, here are the changes.

pkg/io_utils.py
```python
<<<<<<<<< SEARCH
def load(path):
    with open(path) as fh:
=======
def load(path, encoding="utf-8"):
    with open(path, encoding=encoding) as fh:
>>>>>>>>> REPLACE>
```

```python
<<<<< SEARCH
    with open(path, "w") as fh:
=====
    with open(path, "w", encoding="utf-8") as fh:
>>>>> REPLACE
```
'''
    assert detect(text) == "search-replace"
    results = apply_text(text, root)
    assert [(r.path, r.applied, r.block) for r in results] == [
        ("pkg/io_utils.py", True, 0), ("pkg/io_utils.py", True, 1)]
    out = read(root)
    assert 'def load(path, encoding="utf-8"):' in out and 'open(path, "w", encoding="utf-8")' in out


def test_search_replace_filename_forms_and_near_miss(root):
    text = "**io_utils.py**\n```\n<<<<<<< SEARCH\nimport os\n=======\nimport os\nimport sys\n>>>>>>> REPLACE\n```\n"
    # without a list of the existing files the path is taken as written
    results = apply_text(text, root)
    assert not results[0].applied and results[0].rung == "not-found" and read(root) == SRC
    results = apply_text(text, root, existing_files=lambda: ["README.md", "pkg/io_utils.py", "pkg/other.py"])
    assert results[0].applied and results[0].path == "pkg/io_utils.py"
    assert read(root).startswith("import os\nimport sys\n")


def test_existing_files_are_listed_only_for_a_missing_path(root):
    def no_listing():
        raise AssertionError("listed the files for a path that exists")

    text = "pkg/io_utils.py\n<<<<<<< SEARCH\nimport os\n=======\nimport io\n>>>>>>> REPLACE\n"
    assert apply_text(text, root, existing_files=no_listing)[0].applied


def test_search_replace_new_file_and_failures(root):
    text = ("pkg/new_mod.py\n```python\n<<<<<<< SEARCH\n=======\nVALUE = 1\n>>>>>>> REPLACE\n```\n"
            "pkg/io_utils.py\n```python\n<<<<<<< SEARCH\ndef nothing():\n    pass\n=======\n"
            "def something():\n    pass\n>>>>>>> REPLACE\n```\n")
    results = apply_text(text, root)
    assert results[0].applied and (root / "pkg" / "new_mod.py").read_text() == "VALUE = 1\n"
    assert not results[1].applied and results[1].rung == "not-found"
    assert read(root) == SRC


def test_search_replace_malformed_raises(root):
    with pytest.raises(ParseError):
        apply_text("pkg/io_utils.py\n<<<<<<< SEARCH\nimport os\n", root)
    with pytest.raises(ParseError):
        apply_text("<<<<<<< SEARCH\nimport os\n=======\nimport sys\n>>>>>>> REPLACE\n", root, "search-replace")


def test_udiff_line_numbers_are_hints_and_markers_recovered(root):
    diff = '''```diff
--- a/pkg/io_utils.py
+++ b/pkg/io_utils.py
@@ -40,7 +40,8 @@ wrong numbers
 def save(path, data):
     with open(path, "w") as fh:
         fh.write(data)
+        fh.flush()

```'''
    assert detect(diff) == "udiff"
    results = apply_text(diff, root)
    assert results[0].applied, results
    assert read(root).endswith("        fh.write(data)\n        fh.flush()\n")


def test_udiff_missing_plus_marker_and_blank_context(root):
    diff = ("--- pkg/io_utils.py\n+++ pkg/io_utils.py\n@@ -1,4 +1,5 @@\n import os\n+import sys\n"
            "import json\n\n\n def load(path):\n")
    results = apply_text(diff, root)
    assert results[0].applied, results
    assert read(root).startswith("import os\nimport sys\nimport json\n\n\ndef load(path):\n")


HUNK = """--- a/pkg/io_utils.py
+++ b/pkg/io_utils.py
@@ -1,11 +1,11 @@
-import os
+import os.path


 def load(path):
     with open(path) as fh:
         return fh.read()


 def save(path, data):
     with open(path, "w") as fh:
-        fh.write(data)
+        fh.write(data.strip())
"""


def test_udiff_hunk_split_when_middle_context_is_stale(root):
    # the middle context changed since the model read the file; each change with its own context still applies
    stale = SRC.replace("        return fh.read()\n", "        text = fh.read()\n        return text\n")
    (root / "pkg" / "io_utils.py").write_text(stale)
    results = apply_text(HUNK, root)
    assert results[0].applied and results[0].rung.startswith("split"), results
    assert read(root) == stale.replace("import os\n", "import os.path\n").replace(
        "fh.write(data)", "fh.write(data.strip())")


def test_udiff_hunk_refused_when_a_change_cannot_be_placed(root):
    stale = SRC.replace('    with open(path, "w") as fh:\n        fh.write(data)\n', "    Path(path).write_text(data)\n")
    (root / "pkg" / "io_utils.py").write_text(stale)
    results = apply_text(HUNK, root)
    assert not results[0].applied
    assert read(root) == stale


def test_udiff_new_and_deleted_files(root):
    diff = ("--- /dev/null\n+++ b/pkg/added.py\n@@ -0,0 +1,2 @@\n+A = 1\n+B = 2\n"
            "--- a/pkg/io_utils.py\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-import os\n")
    results = apply_text(diff, root)
    assert [r.action for r in results] == ["create", "delete"] and all(r.applied for r in results)
    assert (root / "pkg" / "added.py").read_text() == "A = 1\nB = 2\n"
    assert not (root / "pkg" / "io_utils.py").exists()


def test_codex_patch_add_update_move_delete(root):
    (root / "old.txt").write_text("bye\n")
    patch = '''*** Begin Patch
*** Add File: pkg/hello.py
+def hello():
+    return "hi"
*** Update File: pkg/io_utils.py
*** Move to: pkg/files.py
@@ def save(path, data):
     with open(path, "w") as fh:
-        fh.write(data)
+        fh.write(data)
+        fh.flush()
*** Delete File: old.txt
*** End Patch
'''
    assert detect(patch) == "patch"
    results = apply_text(patch, root)
    assert all(r.applied for r in results), results
    assert (root / "pkg" / "hello.py").read_text() == 'def hello():\n    return "hi"\n'
    assert not (root / "pkg" / "io_utils.py").exists()
    assert (root / "pkg" / "files.py").read_text().endswith("fh.write(data)\n        fh.flush()\n")
    assert not (root / "old.txt").exists()


def test_codex_patch_is_all_or_nothing(root):
    patch = '''*** Begin Patch
*** Add File: pkg/other.py
+X = 1
*** Update File: pkg/io_utils.py
@@
-import os
+import os, sys
@@
-def missing():
+def found():
*** End Patch'''
    results = apply_text(patch, root)
    assert not any(r.applied for r in results)
    assert read(root) == SRC and not (root / "pkg" / "other.py").exists()


def test_codex_patch_anchor_disambiguates(tmp_path):
    (tmp_path / "a.py").write_text("class A:\n    def f(self):\n        return 1\n\n\nclass B:\n    def f(self):\n"
                                   "        return 1\n")
    patch = ("*** Begin Patch\n*** Update File: a.py\n@@ class B:\n     def f(self):\n-        return 1\n"
             "+        return 2\n*** End Patch\n")
    results = apply_text(patch, tmp_path)
    assert results[0].applied
    assert (tmp_path / "a.py").read_text().endswith("class B:\n    def f(self):\n        return 2\n")


def test_whole_file_and_truncation_refused(root):
    text = "pkg/io_utils.py\n```python\nimport os\n\n\ndef load(path):\n    return open(path).read()\n```\n"
    assert detect(text) == "whole"
    results = apply_text(text, root)
    assert results[0].applied and read(root).endswith("return open(path).read()\n")
    text = "pkg/io_utils.py\n```python\nimport os\n# ... rest of the file unchanged ...\n```\n"
    results = apply_text(text, root)
    assert not results[0].applied and results[0].rung == "truncated"


def test_edit_json_object_and_list(root):
    one = {"path": "pkg/io_utils.py", "old_string": "import os\n", "new_string": "import os\nimport io\n"}
    assert detect(json.dumps(one)) == "edit-json"
    assert apply_text(json.dumps(one), root)[0].applied
    many = [
        {"file_path": "pkg/io_utils.py", "old_string": "fh.read()", "new_string": "fh.read().strip()"},
        {"path": "pkg/io_utils.py", "old_string": "absent", "new_string": "x"},
    ]
    results = apply_text(json.dumps(many), root)
    assert [r.applied for r in results] == [True, False]
    with pytest.raises(ParseError):
        parse('[{"path": "x"}]', "edit-json")


def test_paths_cannot_escape_root(root):
    one = {"path": "../outside.py", "old_string": "", "new_string": "x = 1\n"}
    results = apply_text(json.dumps(one), root / "pkg")
    assert not results[0].applied and "outside the root" in results[0].error
    assert not (root / "outside.py").exists()


def test_udiff_shrinks_stale_outer_context(root):
    # the first context line no longer exists; the change itself and its nearer context do
    stale = SRC.replace("import os\n", "from pathlib import Path\n")
    (root / "pkg" / "io_utils.py").write_text(stale)
    diff = ("--- a/pkg/io_utils.py\n+++ b/pkg/io_utils.py\n@@ -1,6 +1,6 @@\n import os\n \n \n def load(path):\n"
            "-    with open(path) as fh:\n+    with open(path, 'rb') as fh:\n         return fh.read()\n")
    results = apply_text(diff, root)
    assert results[0].applied and results[0].rung.startswith("shrunk-context"), results
    assert read(root) == stale.replace("with open(path) as fh:", "with open(path, 'rb') as fh:")


def test_codex_patch_end_of_file_append(root):
    patch = ("*** Begin Patch\n*** Update File: pkg/io_utils.py\n@@\n+\n+\n+def nothing():\n+    pass\n"
             "*** End of File\n*** End Patch\n")
    results = apply_text(patch, root)
    assert results[0].applied, results
    assert read(root) == SRC + "\n\ndef nothing():\n    pass\n"


def test_search_replace_empty_search_appends_to_existing_file(root):
    text = "pkg/io_utils.py\n```python\n<<<<<<< SEARCH\n=======\n\n\nDEBUG = False\n>>>>>>> REPLACE\n```\n"
    results = apply_text(text, root)
    assert results[0].applied and results[0].rung == "append"
    assert read(root) == SRC + "\n\nDEBUG = False\n"
