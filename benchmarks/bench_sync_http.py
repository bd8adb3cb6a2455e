"""Sync over HTTP from the fake PNCP: records/s end to end, with PNCP's page sizes.

Starts the fake PNCP Consulta API in its own process (``python -m tests.fakes.fake_pncp``,
so it does not share our GIL, as the real PNCP would not) serving N contratações and M
contratos over D days, then times ``start_run`` + ``execute_run`` for both resources with
``requests_per_second=0`` (no politeness delay), PNCP's page sizes (50 contratações, 500
contratos per page; contratações windowed per day × 13 modalidades) and 4 fetching threads.
A second run over the same period (every record unchanged) is timed too.

    .venv/bin/python benchmarks/bench_sync_http.py --contratacoes 10000 --contratos 20000
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _setup

TARGET = 2_000  # records/s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_fake(args) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tests.fakes.fake_pncp",
        "--port",
        str(port),
        "--contratacoes",
        str(args.contratacoes),
        "--contratos",
        str(args.contratos),
        "--start",
        _setup.START.isoformat(),
        "--days",
        str(args.days),
        "--seed",
        str(args.seed),
    ]
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=_setup.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    line = process.stdout.readline()
    if "serving" not in line:
        process.kill()
        raise RuntimeError(f"fake PNCP did not start: {line!r}")
    return process, line.strip().rsplit(" at ", 1)[1], time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / __import__("os").sysconf("SC_CLK_TCK")


class MainThreadSplit:
    """Wall time of the ingesting (main) thread in pncp.sync's page and window steps.

    Wraps ``pncp.sync._ingest_page`` and ``pncp.sync._finish_window`` for the run (the module
    is not modified); the rest is planning, waiting for pages and closing the run.
    """

    NAMES = ("_ingest_page", "_finish_window")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(self.NAMES, 0.0)
        self.calls = dict.fromkeys(self.NAMES, 0)

    def __enter__(self):
        import pncp.sync

        self.originals = {name: getattr(pncp.sync, name) for name in self.NAMES}
        for name, original in self.originals.items():
            setattr(pncp.sync, name, self._timed(name, original))
        return self

    def _timed(self, name, original):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1

        return timed

    def __exit__(self, *exc):
        import pncp.sync

        for name, original in self.originals.items():
            setattr(pncp.sync, name, original)


def sync_once(base_url: str, args, label: str, fake_pid: int) -> dict:
    import resource

    from pncp.client import PNCPClient
    from pncp.models import SyncRun
    from pncp.sync import SyncOptions, execute_run, start_run

    options = SyncOptions(
        resources=["contratacoes", "contratos"],
        desde=_setup.START,
        # one day more than the data: the fake may publish a record just after midnight of
        # its last day
        ate=_setup.START + timedelta(days=args.days),
        concurrency=args.concurrency,
    )
    client = PNCPClient(base_url, requests_per_second=0, redis_url="")
    fake_cpu = cpu_seconds(fake_pid)
    own = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    with MainThreadSplit() as split:
        run = start_run(options, trigger=SyncRun.Trigger.TEST)
        progress = execute_run(run, client=client)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    client.close()
    run.refresh_from_db()
    stats = client.stats
    result = {
        "label": label,
        "seconds": seconds,
        "records": progress.records,
        "rate": progress.records / seconds,
        "created": progress.result.created,
        "updated": progress.result.updated,
        "unchanged": progress.result.unchanged,
        "rejected": progress.result.rejected,
        "pages": progress.pages,
        "windows": progress.windows_total,
        "windows_failed": progress.windows_failed,
        "run_status": run.status,
        "requests": stats["requests"],
        "retries": stats["retries"],
        "mean_latency_ms": 1000 * stats["latency_total"] / max(1, stats["requests"]),
        "importer_cpu_seconds": (after.ru_utime + after.ru_stime) - (own.ru_utime + own.ru_stime),
        "fake_cpu_seconds": cpu_seconds(fake_pid) - fake_cpu,
        "main_thread": {
            name: {"seconds": split.seconds[name], "calls": split.calls[name]}
            for name in split.NAMES
        },
    }
    print(
        f"  {label:<28} {result['records']:>8,} records in {seconds:7.2f} s = "
        f"{result['rate']:>7,.0f}/s  ({result['pages']:,} pages, {result['requests']:,} requests,"
        f" mean latency {result['mean_latency_ms']:.1f} ms, importer CPU "
        f"{result['importer_cpu_seconds']:.1f} s, fake CPU {result['fake_cpu_seconds']:.1f} s,"
        f" run {run.status})",
        flush=True,
    )
    for name in split.NAMES:
        took, calls = split.seconds[name], split.calls[name]
        print(
            f"    main thread in {name:<15} {took:6.2f} s ({took / seconds:5.1%}) over "
            f"{calls:,} calls, {1000 * took / max(1, calls):.1f} ms each",
            flush=True,
        )
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contratacoes", type=int, default=10_000)
    parser.add_argument("--contratos", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)

    _setup.bootstrap()
    info = _setup.machine_info()
    _setup.print_machine(info)
    process, base_url, boot = start_fake(args)
    print(f"# fake PNCP at {base_url} (started in {boot:.1f} s, untimed)", flush=True)
    try:
        _setup.truncate_records()
        first = sync_once(base_url, args, "first sync (empty tables)", process.pid)
        again = sync_once(base_url, args, "second sync (unchanged)", process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)
    from pncp.models import Contratacao, Contrato

    stored = {"contratacoes": Contratacao.objects.count(), "contratos": Contrato.objects.count()}
    complete = stored == {"contratacoes": args.contratacoes, "contratos": args.contratos}
    summary = {
        "first_sync_rate": first["rate"],
        "second_sync_rate": again["rate"],
        "target": TARGET,
        "pass": first["rate"] >= TARGET and complete,
        "stored": stored,
        "complete": complete,
    }
    print(
        f"\n  first sync {first['rate']:,.0f} records/s (target ≥ {TARGET:,}: "
        f"{'PASS' if summary['pass'] else 'FAIL'}), second sync {again['rate']:,.0f}/s, "
        f"stored {stored}"
    )
    payload = {
        "benchmark": "sync_http",
        "machine": info,
        "args": vars(args),
        "results": [first, again],
        "summary": summary,
    }
    path = _setup.write_results(f"sync-http{'-' + args.tag if args.tag else ''}", payload)
    print(f"# results: {path}")
    return payload


if __name__ == "__main__":
    main()
