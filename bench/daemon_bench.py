"""Benchmark of the completion daemon (daemon/): a typing simulation against the running HTTP server.

    .venv/bin/python bench/daemon_bench.py            # CPU: small random-weight model, ~1k-token prompts
    .venv/bin/python bench/daemon_bench.py --quick    # tiny model, few keystrokes (smoke test, seconds)
    .venv/bin/python bench/daemon_bench.py --gpu      # GPU: 1.5B-shaped random model, 2-4k-token prompts
    .venv/bin/python bench/daemon_bench.py --repo-context   # + a run with repository snippets in the prompts

Typing sessions: real Python sources from installed packages. Each session puts the cursor at a random line of
a file and types that line's text one keystroke at a time (80-250 ms apart, uniformly random; the untyped rest
of the line is not in the buffer yet), then the next line, and so on;
every keystroke sends a native /v1/ghost request (SSE) for that document, which cancels the still-running
request of the previous keystroke; sometimes the cursor jumps to another line. The context is llama.vim's
shape: up to N lines before the cursor, M after, plus a few extra chunks of other files.

Measured per configuration (same keystroke schedule, same prompts):
  * end-to-end latency of answered requests (request sent -> final event), p50/p90/p99;
  * time to first token (request sent -> first token event), p50/p90/p99;
  * KV-reuse hit rate (share of answered requests that reused >= half their prompt) and reused-token share;
  * cancellation ratio (superseded requests / requests) and three cancel latencies, p50/p99:
      - cancel_latency ("frees the slot", the done-when target): cancel requested (the superseding request reaches
        the engine) -> the job is released: finished as cancelled, its result handed to the client's event loop,
        and its seat in the backend's max_active free for admission (daemon/engine/types.py, Job);
      - drop_latency: cancel requested -> the model worker has let go of the job (the forward pass in flight
        aborted at its next decoder layer when all its rows are cancelled, else finished; the job's KV state
        salvaged into the prefix cache): how long a cancelled job still costs compute;
      - cancel_client: measured by the client: the superseding keystroke's request sent -> the cancelled request's
        final SSE event received (HTTP, the server's event loop and the client included).
Suggestions: the result cache (a typist who types the shown suggestion through, backspaces and retypes: hit
rate, latency of what the cache serves vs the same keystrokes with the cache off), the credential scanner on the
labelled test set (tests/support/secretset.py: how many it blocks, recall, false positives, cost per suggestion
p50/p99) and the share of answered suggestions each filter changed or dropped.
Configurations: KV reuse on, KV reuse off (the ratio is the point), and a naive baseline that runs
`model.generate` on the full prompt for a sample of the same prompts (no server, no reuse, no cancellation).
Writes bench/out/daemon_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PACKAGES = ["aiohttp", "httpx", "rich", "typer", "click", "pathspec", "unidiff"]


def source_files(min_lines: int = 200) -> list[Path]:
    import click

    sp = Path(click.__file__).resolve().parent.parent
    out = []
    for pkg in PACKAGES:
        for p in sorted((sp / pkg).rglob("*.py")):
            try:
                if p.read_text(encoding="utf-8").count("\n") >= min_lines:
                    out.append(p)
            except (OSError, UnicodeDecodeError):
                continue
    return out


def site_root() -> Path:
    import click

    return Path(click.__file__).resolve().parent.parent


def rel_name(p: Path) -> str:
    """The path an editor would send: relative to the repository (here: site-packages, e.g. rich/console.py)."""
    return p.resolve().relative_to(site_root()).as_posix()


def repo_copy(dest: Path) -> Path:
    """The bench's packages as one repository (a copy: site-packages itself is far bigger), for --repo-context."""
    import shutil

    if not dest.is_dir():
        for pkg in PACKAGES:
            shutil.copytree(site_root() / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    return dest


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# ------------------------------------------------------------------------------------------ the keystroke plan

def make_plan(files: list[Path], n_sessions: int, keys_per_session: int, n_before: int, n_after: int,
              n_extra: int, extra_lines: int, rng: random.Random) -> list[list[dict[str, Any]]]:
    """Sessions of keystrokes; each keystroke is a /v1/ghost body plus the delay before it (ms)."""
    sessions = []
    for s in range(n_sessions):
        path = rng.choice(files)
        lines = path.read_text(encoding="utf-8").split("\n")
        others = [rng.choice(files) for _ in range(n_extra)]
        extra = []
        for o in others:
            ol = o.read_text(encoding="utf-8").split("\n")
            a = rng.randrange(0, max(1, len(ol) - extra_lines))
            extra.append({"text": "\n".join(ol[a : a + extra_lines]) + "\n", "filename": rel_name(o)})
        row = rng.randrange(n_before // 2, max(n_before // 2 + 1, len(lines) - n_after - 5))
        col = len(lines[row]) - len(lines[row].lstrip())
        keys = []
        for _k in range(keys_per_session):
            # the cursor jumps to another line now and then (cursor movement), else types the next character
            if rng.random() < 0.05:
                row = rng.randrange(n_before // 2, max(n_before // 2 + 1, len(lines) - n_after - 5))
                col = len(lines[row]) - len(lines[row].lstrip())
            line = lines[row]
            if col >= len(line):
                row += 1
                if row >= len(lines) - 1:
                    row = n_before // 2
                line = lines[row]
                col = len(line) - len(line.lstrip())
            col += 1
            before = lines[max(0, row - n_before) : row]
            prefix = "\n".join(before) + "\n" + line[:col]
            after = lines[row + 1 : row + 1 + n_after]
            # the rest of the current line is what the user is about to type: it is not in the buffer yet
            suffix = "\n" + "\n".join(after) + "\n"
            keys.append({"delay_ms": rng.uniform(80, 250), "body": {
                "prefix": prefix, "suffix": suffix, "extra": extra, "filename": rel_name(path),
                "document": f"session-{s}",
            }})
        sessions.append(keys)
    return sessions


# ------------------------------------------------------------------------------------------------ one config

async def run_config(engine: Any, sessions: list[list[dict[str, Any]]], n_predict: int, token: str,
                     seq_limit: int) -> dict[str, Any]:
    import httpx

    from ghostline.daemon.server.app import bound_port, create_app, start_server

    app = create_app(engine, token=token)
    runner = await start_server(app, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{bound_port(runner)}"
    rows: list[dict[str, Any]] = []

    async def one(client: httpx.AsyncClient, body: dict[str, Any], rec: dict[str, float] | None = None) -> None:
        t0 = time.perf_counter()
        if rec is not None:
            rec["sent"] = t0
        first = None
        final: dict[str, Any] | None = None
        event = ""
        async with client.stream("POST", "/v1/ghost", json=body) as r:
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    if event == "token" and first is None:
                        first = time.perf_counter()
                    elif event in ("done", "cancelled"):
                        final = json.loads(line[6:])
        t1 = time.perf_counter()
        assert final is not None
        if rec is not None:
            rec["final"] = t1
            rec["cancelled"] = float(bool(final["cancelled"]))
        rows.append({"e2e_ms": (t1 - t0) * 1e3, "ttft_ms": ((first or t1) - t0) * 1e3, "got_token": first is not None,
                     "cancelled": final["cancelled"], "reused": final["tokens_reused"],
                     "prompt_n": final["timings"]["prompt_n"], "server_ttft_ms": final["ttft_ms"],
                     "truncated": final["truncated"], "source": final["source"]})

    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120,
                                 limits=httpx.Limits(max_connections=64)) as client:
        client_cancel: list[float] = []

        async def session(keys: list[dict[str, Any]]) -> None:
            tasks = []
            recs: list[dict[str, float]] = []
            for k in keys:
                await asyncio.sleep(k["delay_ms"] / 1e3)
                b = dict(k["body"])
                b.update(n_predict=n_predict, stop_at_unit=True, t_max_predict_ms=0)
                recs.append({})
                tasks.append(asyncio.create_task(one(client, b, recs[-1])))
            await asyncio.gather(*tasks)
            # a request of this session is cancelled by the next keystroke's request (the same document)
            for prev, nxt in zip(recs, recs[1:], strict=False):
                if prev.get("cancelled") and "sent" in nxt and prev["final"] >= nxt["sent"]:
                    client_cancel.append((prev["final"] - nxt["sent"]) * 1e3)

        t0 = time.perf_counter()
        await asyncio.gather(*(session(s) for s in sessions))
        wall = time.perf_counter() - t0
        # the same keystrokes again, one request at a time and each awaited (no overlap, no cancellation):
        # TTFT and latency without the typing rhythm deciding which requests survive
        seq_rows_start = len(rows)
        for k in [k for s in sessions for k in s][:seq_limit]:
            b = dict(k["body"])
            b.update(n_predict=n_predict, stop_at_unit=True, t_max_predict_ms=0, document="sequential")
            await one(client, b)
        seq = rows[seq_rows_start:]
        del rows[seq_rows_start:]
    cancel_lat = list(engine.cancel_latencies_ms)
    drop_lat = list(getattr(engine, "drop_latencies_ms", []))  # absent in engines older than the metric
    await runner.cleanup()
    done = [r for r in rows if not r["cancelled"]]
    firsts = [r["ttft_ms"] for r in rows if r["got_token"]]
    hits = [r for r in done if r["reused"] >= 0.5 * (r["reused"] + r["prompt_n"])]
    reused = sum(r["reused"] for r in done)
    total = reused + sum(r["prompt_n"] for r in done)
    return {
        "requests": len(rows), "answered": len(done), "wall_s": wall,
        "e2e_p50": pct([r["e2e_ms"] for r in done], 0.5), "e2e_p90": pct([r["e2e_ms"] for r in done], 0.9),
        "e2e_p99": pct([r["e2e_ms"] for r in done], 0.99),
        "first_token_ratio": len(firsts) / len(rows) if rows else 0.0,
        "ttft_p50": pct(firsts, 0.5), "ttft_p90": pct(firsts, 0.9), "ttft_p99": pct(firsts, 0.99),
        "seq_requests": len(seq),
        "seq_ttft_p50": pct([r["ttft_ms"] for r in seq], 0.5), "seq_ttft_p90": pct([r["ttft_ms"] for r in seq], 0.9),
        "seq_ttft_p99": pct([r["ttft_ms"] for r in seq], 0.99),
        "seq_e2e_p50": pct([r["e2e_ms"] for r in seq], 0.5), "seq_e2e_p90": pct([r["e2e_ms"] for r in seq], 0.9),
        "seq_e2e_p99": pct([r["e2e_ms"] for r in seq], 0.99),
        "kv_hit_rate": len(hits) / len(done) if done else 0.0,
        "reused_token_share": reused / total if total else 0.0,
        "cancel_ratio": sum(r["cancelled"] for r in rows) / len(rows) if rows else 0.0,
        "cancel_latency_p50": pct(cancel_lat, 0.5), "cancel_latency_p99": pct(cancel_lat, 0.99),
        "cancel_latency_max": max(cancel_lat) if cancel_lat else float("nan"), "cancels_measured": len(cancel_lat),
        "drop_latency_p50": pct(drop_lat, 0.5), "drop_latency_p99": pct(drop_lat, 0.99),
        "drop_latency_max": max(drop_lat) if drop_lat else float("nan"), "drops_measured": len(drop_lat),
        "cancel_client_p50": pct(client_cancel, 0.5), "cancel_client_p99": pct(client_cancel, 0.99),
        "cancel_client_measured": len(client_cancel),
        "mean_prompt_tokens": statistics.mean(r["reused"] + r["prompt_n"] for r in done) if done else 0,
        "cache_hit_rate": sum(r["source"] == "cache" for r in rows) / len(rows) if rows else 0.0,
        "truncated": sum(r["truncated"] for r in done),
    }


# ------------------------------------------------------------------------------- result cache and post-processing

async def typed_through(engine: Any, sessions: list[list[dict[str, Any]]], n_predict: int, token: str,
                        samples: int, cache: bool) -> dict[str, Any]:
    """A user who types what is shown (llama.vim's /infill): for a sample of the plan's places, ask for a
    suggestion, then type up to 8 of its characters one keystroke at a time, backspace twice and type them again;
    every keystroke a request. With `cache` off (the baseline) each of them goes to the engine."""
    import httpx

    from ghostline.daemon.engine.resultcache import ResultCache
    from ghostline.daemon.server.app import bound_port, create_app, start_server

    engine.results = ResultCache() if cache else ResultCache(per_doc=0)
    engine.backend.start(warmup=False)  # the previous server's shutdown stopped its worker
    runner = await start_server(create_app(engine, token=token), "127.0.0.1", 0)
    lat: list[float] = []
    hit_lat: list[float] = []
    keys = [k for s in sessions for k in s][:: max(1, sum(map(len, sessions)) // samples)][:samples]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bound_port(runner)}", timeout=120,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        async def ask(body: dict[str, Any], typed: str) -> tuple[str, float, bool]:
            before = engine.counters["cache_hits"]
            t0 = time.perf_counter()
            r = (await client.post("/infill", json={
                "input_prefix": body["prefix"] + typed, "input_suffix": body["suffix"], "n_predict": n_predict,
                "input_extra": body["extra"], "client_id": "typist"})).json()
            return r["content"], (time.perf_counter() - t0) * 1e3, engine.counters["cache_hits"] > before

        for k in keys:
            shown, _, _ = await ask(k["body"], "")
            n = min(8, len(shown) - 1)
            if n < 3:
                continue
            for typed in [shown[:i] for i in range(1, n + 1)] + [shown[: n - 2], shown[: n - 1], shown[:n]]:
                _, ms, hit = await ask(k["body"], typed)
                lat.append(ms)
                if hit:
                    hit_lat.append(ms)
    await runner.cleanup()
    return {"requests": len(lat), "cache_hits": len(hit_lat), "hit_rate": len(hit_lat) / len(lat) if lat else 0.0,
            "latency_p50": pct(lat, 0.5), "latency_p99": pct(lat, 0.99),
            "hit_latency_p50": pct(hit_lat, 0.5), "hit_latency_p99": pct(hit_lat, 0.99)}


def scanner_figures(engine_counters: dict[str, float], answered: int) -> dict[str, Any]:
    """The credential scanner on the labelled set (tests/support/secretset.py): recall, false positives, how
    many it blocked, and its cost per suggestion as the engine pays it (SuggestionGuard.finish); and the share
    of the typing run's answered suggestions each filter changed or dropped."""
    from ghostline.daemon.engine.guard import SuggestionGuard
    from ghostline.daemon.engine.secrets import SecretScanner
    from ghostline.daemon.engine.types import Completion, CompletionRequest, CompletionResult
    from tests.support.secretset import evaluate, negatives, positives

    scanner = SecretScanner()
    samples = positives() + negatives()
    scores = evaluate(scanner, samples)
    cost, scan = [], []
    for smp in samples:
        if len(smp.text) > 1000:  # a suggestion is at most a few hundred characters (n_predict tokens)
            continue
        best = best_scan = float("inf")
        for _ in range(3):  # best of three: this machine is shared, a preemption is not the scanner's cost
            g = SuggestionGuard(CompletionRequest(prefix="x = 1\n", suffix="\n"), scanner, stream=False)
            t0 = time.perf_counter()
            g.finish(CompletionResult([Completion(smp.text, [], "eos")]))
            t1 = time.perf_counter()
            scanner.find(smp.text)
            best, best_scan = min(best, t1 - t0), min(best_scan, time.perf_counter() - t1)
        cost.append(best * 1e3)
        scan.append(best_scan * 1e3)
    filters = {k[len("filter_"):]: v / answered for k, v in sorted(engine_counters.items())
               if k.startswith("filter_") and answered}
    return {"test_set": {"samples": scores["samples"], "blocked": scores["blocked"], "recall": scores["recall"],
                         "false_positives": scores["false_positives"], "fp_rate": scores["fp_rate"],
                         "precision": scores["precision"]},
            "scan_p50_ms": pct(cost, 0.5), "scan_p99_ms": pct(cost, 0.99), "scanner_only_p99_ms": pct(scan, 0.99),
            "filter_share": filters}


def naive_baseline(lm: Any, sessions: list[list[dict[str, Any]]], n_predict: int, samples: int,
                   rng: random.Random) -> dict[str, Any]:
    """`model.generate` on the full prompt, one request at a time: TTFT = generate(max_new_tokens=1)."""
    import torch

    from ghostline.daemon.engine.fim import ExtraChunk

    keys = [k for s in sessions for k in s]
    pick = rng.sample(keys, min(samples, len(keys)))
    ttft, e2e = [], []
    sync = torch.cuda.synchronize if lm.device.startswith("cuda") else (lambda: None)
    with torch.inference_mode():
        for k in pick:
            b = k["body"]
            text = lm.fim.build(b["prefix"], b["suffix"], [ExtraChunk(x["text"], x["filename"]) for x in b["extra"]],
                                filename=b["filename"])
            ids = torch.tensor([lm.encode(text)[-(lm.n_ctx - n_predict - 1):]], device=lm.device)
            mask = torch.ones_like(ids)
            sync()
            t0 = time.perf_counter()
            lm.model.generate(ids, attention_mask=mask, max_new_tokens=1, do_sample=False, pad_token_id=0)
            sync()
            t1 = time.perf_counter()
            lm.model.generate(ids, attention_mask=mask, max_new_tokens=n_predict, min_new_tokens=n_predict,
                              do_sample=False, pad_token_id=0)
            sync()
            t2 = time.perf_counter()
            ttft.append((t1 - t0) * 1e3)
            e2e.append((t2 - t1) * 1e3)
    return {"requests": len(pick), "ttft_p50": pct(ttft, 0.5), "ttft_p90": pct(ttft, 0.9), "ttft_p99": pct(ttft, 0.99),
            "e2e_p50": pct(e2e, 0.5), "e2e_p90": pct(e2e, 0.9), "e2e_p99": pct(e2e, 0.99)}


# ------------------------------------------------------------------------------------------------------ main

def _print_suggestions(results: dict[str, Any]) -> None:
    tc, nc, sg = results["typed_through_cache"], results["typed_through_no_cache"], results["suggestions"]
    print(f"\nresult cache (a typist typing the shown suggestion through, backspacing, retyping; {tc['requests']} "
          f"keystrokes): hit rate {tc['hit_rate']:.1%}; served from the cache p50 {tc['hit_latency_p50']:.2f} ms, "
          f"p99 {tc['hit_latency_p99']:.2f} ms; without the cache (baseline) p50 {nc['latency_p50']:.2f} ms, "
          f"p99 {nc['latency_p99']:.2f} ms; typing-simulation hit rate {results['kv_reuse_on']['cache_hit_rate']:.1%}")
    ts = sg["test_set"]
    print(f"credential scanner: {ts['blocked']} of {ts['samples']} test-set suggestions blocked (recall "
          f"{ts['recall']:.1%}, false positives {ts['false_positives']} = {ts['fp_rate']:.2%}, precision "
          f"{ts['precision']:.1%}); cost per suggestion (scanner + filters, best of 3) p50 {sg['scan_p50_ms']:.3f} ms, "
          f"p99 {sg['scan_p99_ms']:.3f} ms (scanner alone p99 {sg['scanner_only_p99_ms']:.3f} ms; in the engine "
          f"during the typing run, model thread competing: p99 {sg['engine_scan_p99_ms']:.3f} ms)")
    shares = ", ".join(f"{k} {v:.1%}" for k, v in sg["filter_share"].items()) or "none"
    print(f"filters (share of answered suggestions changed/dropped): {shares}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny model, few keystrokes (smoke test)")
    ap.add_argument("--gpu", action="store_true", help="1.5B-shaped random model on CUDA, 2-4k-token prompts")
    ap.add_argument("--sessions", type=int, default=None)
    ap.add_argument("--keys", type=int, default=None, help="keystrokes per session")
    ap.add_argument("--n-predict", type=int, default=None)
    ap.add_argument("--naive-samples", type=int, default=None)
    ap.add_argument("--sequential", type=int, default=None, help="keystrokes replayed one at a time (no overlap)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: the daemon's policy, cores - 1; 0: torch's default)")
    ap.add_argument("--fim-format", default="starcoder-spm",
                    help="prompt layout (default: StarCoder's suffix-first variant, what detection picks for a "
                         "StarCoder tokenizer); e.g. starcoder for prefix-suffix-middle")
    ap.add_argument("--repo-context", action="store_true",
                    help="also run with repository snippets in the prompts (daemon/context.py over the packages)")
    ap.add_argument("--typed-samples", type=int, default=None,
                    help="places where the typist types the shown suggestion through (result cache phase)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "daemon_bench.json"))
    a = ap.parse_args()

    import torch

    from ghostline.daemon.engine.kvcache import PrefixCache
    from ghostline.daemon.engine.local import LocalBackend, LocalModel
    from ghostline.daemon.engine.service import Engine
    from tests.support.randomckpt import build_checkpoint

    if a.gpu and not torch.cuda.is_available():
        print("error: --gpu needs CUDA (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    if a.gpu:
        shape, sessions, keys, n_predict, naive, before, after, n_extra, extra_lines = "1.5b", 1, 60, 48, 20, 120, 30, 3, 30
        max_pos, dtype = 8192, "bfloat16"
    elif a.quick:
        shape, sessions, keys, n_predict, naive, before, after, n_extra, extra_lines = "tiny", 1, 12, 8, 4, 40, 10, 1, 20
        max_pos, dtype = 2048, "float32"
    else:
        shape, sessions, keys, n_predict, naive, before, after, n_extra, extra_lines = "small", 1, 80, 24, 12, 60, 20, 1, 30
        max_pos, dtype = 4096, "float32"
    seq_limit = a.sequential if a.sequential is not None else (8 if a.quick else 40)
    sessions = a.sessions or sessions
    keys = a.keys or keys
    n_predict = a.n_predict or n_predict
    naive = a.naive_samples if a.naive_samples is not None else naive
    a.typed_samples = a.typed_samples or (3 if a.quick else 12)

    cache_dir = ROOT / "bench" / ".cache" / f"daemon-ckpt-{shape}"
    if not (cache_dir / "config.json").is_file():
        print(f"building a random-weight {shape} checkpoint in {cache_dir} ...", file=sys.stderr)
        build_checkpoint(cache_dir, shape, vocab_size=8192 if shape != "tiny" else 1024, max_positions=max_pos,
                         dtype=dtype)
    device = "cuda" if a.gpu else "cpu"
    lm = LocalModel.load(cache_dir, device=device, fim_format=a.fim_format)
    rng = random.Random(a.seed)
    files = source_files()
    plan = make_plan(files, sessions, keys, before, after, n_extra, extra_lines, rng)
    token = "bench-token"
    results: dict[str, Any] = {"config": {
        "shape": shape, "fim_format": lm.fim.name, "device": device, "dtype": lm.dtype, "params": lm.n_params, "sessions": sessions,
        "keys_per_session": keys, "n_predict": n_predict, "lines_before": before, "lines_after": after,
        "extra_chunks": n_extra,
        "gpu": torch.cuda.get_device_name(0) if a.gpu else None,
        "loadavg_at_start": os.getloadavg(), "cpu_count": os.cpu_count(),
    }}
    configs = [("kv_reuse_on", True, False), ("kv_reuse_off", False, False)]
    if a.repo_context:
        configs.append(("kv_reuse_on_repo", True, True))
    for name, reuse, with_repo in configs:
        be = LocalBackend(lm, cache=PrefixCache(max_bytes=4 * 2**30), kv_reuse=reuse, cpu_threads=a.threads)
        ctx = None
        if with_repo:
            from ghostline.daemon.context import RepoContext

            ctx = RepoContext.open(repo_copy(ROOT / "bench" / ".cache" / "daemon-repo"))
            st = ctx.index.refresh(embed=False)
            print(f"repository index: {st.scanned} files", file=sys.stderr)
        eng = Engine(be, context=ctx)
        eng.start()
        print(f"running {name} ({sessions} x {keys} keystrokes) ...", file=sys.stderr)
        results[name] = asyncio.run(run_config(eng, plan, n_predict, token, seq_limit))
        results[name]["fast_path"] = be.fast_path
        if ctx is not None:
            results[name]["context"] = dict(ctx.stats)
            ctx.stop()
        if name == "kv_reuse_on":
            answered = results[name]["answered"] + results[name]["seq_requests"]
            results["suggestions"] = scanner_figures(dict(eng.counters), answered)
            results["suggestions"]["engine_scan_p99_ms"] = pct(list(eng.scan_ms), 0.99)
            for label, cache in (("typed_through_cache", True), ("typed_through_no_cache", False)):
                print(f"running {label} ...", file=sys.stderr)
                results[label] = asyncio.run(typed_through(eng, plan, n_predict, token, a.typed_samples, cache))
        be.stop()
    results["config"]["torch_threads"] = torch.get_num_threads()
    if naive:
        print(f"running the naive model.generate baseline ({naive} prompts) ...", file=sys.stderr)
        results["naive_generate"] = naive_baseline(lm, plan, n_predict, naive, rng)
    on, off = results["kv_reuse_on"], results["kv_reuse_off"]
    results["ratios"] = {
        "ttft_p50_off_over_on (typing)": off["ttft_p50"] / on["ttft_p50"],
        "ttft_p50_off_over_on (sequential)": off["seq_ttft_p50"] / on["seq_ttft_p50"],
        "e2e_p50_off_over_on (sequential)": off["seq_e2e_p50"] / on["seq_e2e_p50"],
    }
    if "kv_reuse_on_repo" in results:
        rp = results["kv_reuse_on_repo"]
        results["ratios"]["ttft_p50_repo_over_on (typing)"] = rp["ttft_p50"] / on["ttft_p50"]
        results["ratios"]["ttft_p50_repo_over_on (sequential)"] = rp["seq_ttft_p50"] / on["seq_ttft_p50"]
    if naive:
        nv = results["naive_generate"]
        results["ratios"]["ttft_p50_naive_over_on (sequential)"] = nv["ttft_p50"] / on["seq_ttft_p50"]
        results["ratios"]["e2e_p50_naive_over_on (sequential)"] = (nv["ttft_p50"] + nv["e2e_p50"]) / on["seq_e2e_p50"]

    # table
    cols = ["requests", "answered", "first_token_ratio", "cancel_ratio", "kv_hit_rate", "reused_token_share",
            "mean_prompt_tokens", "ttft_p50", "ttft_p90", "ttft_p99", "e2e_p50", "e2e_p90", "e2e_p99",
            "cancel_latency_p50", "cancel_latency_p99", "drop_latency_p50", "drop_latency_p99", "cancel_client_p50",
            "cancel_client_p99", "seq_requests", "seq_ttft_p50", "seq_ttft_p90",
            "seq_ttft_p99", "seq_e2e_p50", "seq_e2e_p90", "seq_e2e_p99"]
    print(f"\ndaemon_bench: {shape} model ({lm.n_params / 1e6:.1f}M params) on {device} "
          f"({results['config']['torch_threads']} torch threads), "
          f"{sessions}x{keys} keystrokes, n_predict {n_predict}")
    names = [n for n in ("kv_reuse_on", "kv_reuse_off", "kv_reuse_on_repo") if n in results]
    print(f"{'metric':24s} " + " ".join(f"{n:>16s}" for n in names) + f" {'naive_generate':>15s}")
    for c in cols:
        nv_key = c[4:] if c.startswith("seq_") else None
        vals = [results[n].get(c) for n in names]
        nv = results.get("naive_generate", {}).get(nv_key) if nv_key else None
        print(f"{c:24s} " + " ".join(f"{v:>16.3f}" if isinstance(v, float) else f"{v if v is not None else '-':>16}"
                                     for v in vals)
              + (f" {nv:>15.3f}" if isinstance(nv, float) else f" {'-':>15}"))
    if "kv_reuse_on_repo" in results:
        rc = results["kv_reuse_on_repo"]
        print(f"repository context: {rc['context']}; prompt tokens {rc['mean_prompt_tokens']:.0f} vs "
              f"{results['kv_reuse_on']['mean_prompt_tokens']:.0f} without; reused share "
              f"{rc['reused_token_share']:.3f}")
    print("(typing rows: ttft over requests that got a token, e2e over answered ones; seq_*: the same keystrokes\n"
          " replayed one at a time; naive_generate: ttft = generate(max_new_tokens=1), e2e = n_predict tokens; ms)\n"
          "(cancel_latency = cancel requested -> slot freed: the job finished as cancelled, its client answered and\n"
          " its max_active seat free for admission; drop_latency = cancel requested -> the worker let go of it (the\n"
          " forward in flight aborted between layers if all its rows are cancelled, else done; KV salvaged);\n"
          " cancel_client = next keystroke's request sent -> the cancelled request's final event at the client)")
    for k, v in results["ratios"].items():
        print(f"{k:40s} {v:8.2f}x")
    _print_suggestions(results)
    r = results["ratios"]
    print(f"done-when: p50 TTFT with reuse >= 2x faster: {'yes' if r['ttft_p50_off_over_on (sequential)'] >= 2 else 'NO'};"
          f" cancel frees the slot, p99 < 10 ms: {'yes' if on['cancel_latency_p99'] < 10 else 'NO'}"
          f" ({on['cancel_latency_p99']:.3f} ms over {on['cancels_measured']} cancels);"
          f" the worker drops it, p99 < 10 ms: {'yes' if on['drop_latency_p99'] < 10 else 'NO'}"
          f" ({on['drop_latency_p99']:.1f} ms; client-side p99 {on['cancel_client_p99']:.1f} ms)")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    results["config"]["loadavg_at_end"] = os.getloadavg()
    out.write_text(json.dumps(results, indent=2))
    print(f"machine load average at start/end: {results['config']['loadavg_at_start'][0]:.1f} / "
          f"{results['config']['loadavg_at_end'][0]:.1f} on {os.cpu_count()} CPUs")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
