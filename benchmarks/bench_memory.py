"""Peak memory of importing saved pages, from 10,000 to 1,000,000 contratações.

For each size a fresh process writes the pages to a temporary directory (streamed: one page
in memory at a time), then another fresh process imports them through ``import_from_dir``
(the ``sync_pncp --from-dir`` path: page by page, a checkpoint per page) into emptied tables,
then once more (a re-import of unchanged pages), and reports its peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``, both imports), its peak after the first, its RSS
right after Django started, and its RSS at every tenth of the first import, so growth shows
up as a slope.

    .venv/bin/python benchmarks/bench_memory.py --sizes 10000,100000,1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _setup

TARGET_MB = 300


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child_generate(directory: Path, n: int, seed: int) -> dict:
    start = time.perf_counter()
    files = _setup.save_pages(directory, n, seed=seed)
    return {
        "pages": len(files),
        "bytes": sum(f.stat().st_size for f in files),
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": peak_mb(),
    }


def child_import(directory: Path, n: int) -> dict:
    _setup.bootstrap()
    from pncp.sync import import_from_dir

    _setup.truncate_records()
    baseline = rss_mb()
    baseline_peak = peak_mb()
    samples = []
    pages = -(-n // _setup.PAGE_SIZE)
    step = max(1, pages // 10)

    def on_progress(progress):
        if progress.windows_done % step == 0:
            samples.append((progress.records, round(rss_mb(), 1)))

    start = time.perf_counter()
    run, progress = import_from_dir(directory, ["contratacoes"], on_progress=on_progress)
    seconds = time.perf_counter() - start
    first_peak = peak_mb()
    # then the same pages again: known pages travel as keys, hashes and their bytes
    start = time.perf_counter()
    rerun, again = import_from_dir(directory, ["contratacoes"])
    reimport_seconds = time.perf_counter() - start
    return {
        "peak_rss_first_import_mb": round(first_peak, 1),
        "reimport": {
            "run_status": rerun.status,
            "seconds": reimport_seconds,
            "rate": again.records / reimport_seconds,
            "unchanged": again.result.unchanged,
        },
        "records": progress.records,
        "rejected": progress.result.rejected,
        "run_status": run.status,
        "seconds": seconds,
        "rate": progress.records / seconds,
        "rss_after_setup_mb": round(baseline, 1),
        "peak_rss_after_setup_mb": round(baseline_peak, 1),
        "rss_samples_mb": samples,
        "rss_end_mb": round(rss_mb(), 1),
        "peak_rss_mb": round(peak_mb(), 1),
    }


def run_child(*args: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=_setup.ROOT)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tag", default="")
    parser.add_argument("--child", choices=["generate", "import"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "generate":
        print(json.dumps(child_generate(Path(args.dir), args.n, args.seed)))
        return None
    if args.child == "import":
        print(json.dumps(child_import(Path(args.dir), args.n)))
        return None

    _setup.bootstrap()
    info = _setup.machine_info()
    _setup.print_machine(info)
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        directory = Path(tempfile.mkdtemp(prefix="pncp-bench-mem-"))
        try:
            generated = run_child("--child", "generate", "--dir", str(directory), "--n", str(n))
            print(
                f"  {n:>9,}: {generated['pages']:,} pages ({generated['bytes'] / 1e6:,.0f} MB) "
                f"written in {generated['seconds']:.0f} s, generator peak "
                f"{generated['peak_rss_mb']:.0f} MB",
                flush=True,
            )
            imported = run_child("--child", "import", "--dir", str(directory), "--n", str(n))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        imported["n"] = n
        imported["generate"] = generated
        results.append(imported)
        print(
            f"  {n:>9,}: imported in {imported['seconds']:.0f} s ({imported['rate']:,.0f}/s), "
            f"re-imported at {imported['reimport']['rate']:,.0f}/s, "
            f"peak RSS {imported['peak_rss_mb']:.0f} MB (after Django setup "
            f"{imported['rss_after_setup_mb']:.0f} MB), RSS samples "
            f"{[mb for _, mb in imported['rss_samples_mb']]}",
            flush=True,
        )
    peaks = [r["peak_rss_mb"] for r in results]
    summary = {
        "peak_rss_mb": {r["n"]: r["peak_rss_mb"] for r in results},
        "max_peak_mb": max(peaks),
        "spread_mb": max(peaks) - min(peaks),
        "target_mb": TARGET_MB,
        "pass": max(peaks) < TARGET_MB,
    }
    print(f"\n  {summary}")
    payload = {"benchmark": "memory", "machine": info, "results": results, "summary": summary}
    path = _setup.write_results(f"memory{'-' + args.tag if args.tag else ''}", payload)
    print(f"# results: {path}")
    return payload


if __name__ == "__main__":
    main()
