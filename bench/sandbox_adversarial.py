"""The adversarial sandbox suite as a report: contained/escaped per case per layer.

    .venv/bin/python bench/sandbox_adversarial.py [--layers bubblewrap,landlock,none] [--jobs N] [--quick]

Every case runs through the real `agent sandbox run` in workspace-write mode with the layer forced by
GHOSTLINE_SANDBOX. The plain layer ("none") is the baseline measured in the same run: it shows the cases
are real attacks (they escape without a sandbox). "landlock-nomountns" is Landlock alone, as where no
mount namespace is permitted (informational: metadata changes and reads of hidden credentials are not
covered by Landlock there). Writes bench/out/sandbox_adversarial.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sandbox.adversarial import CASES, available_levels, run_case, unsafe_reason  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="bubblewrap,landlock,none")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="only the first 5 cases")
    args = ap.parse_args()
    avail = available_levels()
    layers = []
    for layer in args.layers.split(","):
        if layer == "landlock-nomountns" and avail.get("landlock"):
            print(f"skipping {layer}: {avail['landlock']}")
        elif layer in avail and avail[layer]:
            print(f"skipping {layer}: {avail[layer]}")
        else:
            layers.append(layer)
    cases = CASES[:5] if args.quick else CASES
    for c in [c for c in cases if unsafe_reason(c)]:
        print(f"skipping case {c.name}: {unsafe_reason(c)}")
    cases = [c for c in cases if not unsafe_reason(c)]

    def one(job):
        case, layer = job
        base = Path(tempfile.mkdtemp(prefix="sbx-adv-"))
        t = time.perf_counter()
        try:
            escaped, out = run_case(case, layer, base)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return case.name, layer, escaped, out.rc, time.perf_counter() - t

    results: dict[str, dict[str, dict]] = {}
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as ex:
        for name, layer, escaped, rc, dt in ex.map(one, [(c, layer) for c in cases for layer in layers]):
            results.setdefault(name, {})[layer] = {"escaped": escaped, "rc": rc, "seconds": round(dt, 2)}
    width = max(len(c.name) for c in cases) + 2
    print(f"{'case':<{width}}" + "".join(f"{layer:>13}" for layer in layers))
    for c in cases:
        row = results[c.name]
        print(f"{c.name:<{width}}" + "".join(f"{'ESCAPED' if row[layer]['escaped'] else 'contained':>13}"
                                             for layer in layers))
    escapes = {layer: sum(results[c.name][layer]["escaped"] for c in cases) for layer in layers}
    print(f"{'escapes':<{width}}" + "".join(f"{escapes[layer]:>13}" for layer in layers))
    print(f"{len(cases)} cases x {len(layers)} layers in {time.perf_counter() - t0:.1f}s")
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "sandbox_adversarial.json").write_text(json.dumps(
        {"cases": len(cases), "layers": layers, "skipped": {k: v for k, v in avail.items() if v},
         "escapes": escapes, "results": results}, indent=2))
    print(f"wrote {out / 'sandbox_adversarial.json'}")
    confining = [layer for layer in layers if layer in ("bubblewrap", "landlock")]
    return 1 if any(escapes[layer] for layer in confining) else 0


if __name__ == "__main__":
    raise SystemExit(main())
