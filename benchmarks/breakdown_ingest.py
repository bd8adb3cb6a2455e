"""Where an ingest's time goes: wall time per kind of SQL statement, COPY and COMMIT.

Imports N contratações (pages of 50 from disk, as ``bench_ingest.py`` does) into the empty
tables and then re-imports them, timing every statement the importer sends (Django's
``execute_wrapper``), every ``COPY`` and every ``COMMIT``; the rest is Python (reading,
``json.loads``, hashing, parsing, row building). A diagnostic, not a benchmark: the wrappers
add a little time of their own.

    .venv/bin/python benchmarks/breakdown_ingest.py --n 20000
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _setup
from benchmarks.bench_ingest import TABLE, read_page


def kind(sql: str) -> str:
    text = " ".join(sql.split())
    text = re.sub(r"IN \((%s, )*%s\)", "IN (...)", text)
    text = re.sub(r"\(%s(, %s)*\)", "(...)", text)
    text = re.sub(r'SAVEPOINT "[^"]+"', "SAVEPOINT s", text)
    return text[:110]


class Timer:
    def __init__(self) -> None:
        self.by_kind: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    def add(self, name: str, seconds: float) -> None:
        entry = self.by_kind[name]
        entry[0] += 1
        entry[1] += seconds

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.add(kind(sql), time.perf_counter() - start)


def instrument(timer: Timer):
    """Time COPY blocks and COMMITs too (they bypass Django's execute wrappers)."""
    import psycopg

    copy, commit = psycopg.Cursor.copy, psycopg.Connection.commit

    class TimedCopy:
        def __init__(self, inner, statement):
            self.inner, self.statement = inner, statement

        def __enter__(self):
            self.start = time.perf_counter()
            return self.inner.__enter__()

        def __exit__(self, *exc):
            try:
                return self.inner.__exit__(*exc)
            finally:
                self.statement_time = time.perf_counter() - self.start
                timer.add("COPY (write_row + finish)", self.statement_time)

    def timed_copy(self, statement, *args, **kwargs):
        return TimedCopy(copy(self, statement, *args, **kwargs), statement)

    def timed_commit(self):
        start = time.perf_counter()
        try:
            return commit(self)
        finally:
            timer.add("COMMIT", time.perf_counter() - start)

    psycopg.Cursor.copy = timed_copy
    psycopg.Connection.commit = timed_commit

    def restore():
        psycopg.Cursor.copy, psycopg.Connection.commit = copy, commit

    return restore


def run(files, label: str, *, synchronous_commit: str = "", pages_per_txn: int = 1) -> dict:
    """Ingest ``files``; what-ifs: a session ``synchronous_commit`` and K pages per COMMIT."""
    from django.db import connection, transaction

    from pncp.ingest import Ingester

    if synchronous_commit:
        with connection.cursor() as cursor:
            cursor.execute(f"SET synchronous_commit = {synchronous_commit}")
    timer = Timer()
    restore = instrument(timer)
    ingester = Ingester()
    parse_time = 0.0
    start = time.perf_counter()
    with connection.execute_wrapper(timer):
        for first in range(0, len(files), pages_per_txn):
            with transaction.atomic():
                for path in files[first : first + pages_per_txn]:
                    t = time.perf_counter()
                    records = read_page(path)
                    parse_time += time.perf_counter() - t
                    ingester.ingest("contratacoes", records)
    total = time.perf_counter() - start
    if synchronous_commit:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")
    restore()
    timer.add("read file + json.loads", parse_time)
    measured = sum(seconds for _, seconds in timer.by_kind.values())
    rows = sorted(timer.by_kind.items(), key=lambda kv: -kv[1][1])
    n = sum(len(read_page(p)) for p in files)
    print(f"\n== {label}: {n:,} records, {len(files):,} pages, {total:.2f} s = {n / total:,.0f}/s")
    print(f"{'share':>6} {'seconds':>8} {'calls':>7} {'ms/call':>8}  statement")
    for name, (calls, seconds) in rows:
        per_call = seconds / calls * 1000
        print(f"{seconds / total:6.1%} {seconds:8.2f} {calls:7,} {per_call:8.2f}  {name}")
    other = total - measured
    print(f"{other / total:6.1%} {other:8.2f} {'':>7} {'':>8}  Python: hash, parse, rows, ORM")
    return {
        "label": label,
        "records": n,
        "seconds": total,
        "statements": [
            {"statement": name, "calls": calls, "seconds": seconds}
            for name, (calls, seconds) in rows
        ],
        "python_seconds": other,
    }


def drop(what: str) -> list[str]:
    """Drop the foreign keys or non-unique indexes of the table; returns SQL to put them back."""
    from django.db import connection

    with connection.cursor() as cursor:
        if what == "fks":
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'f'",
                [TABLE],
            )
            found = cursor.fetchall()
            for name, _ in found:
                cursor.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')
            back = [f'ALTER TABLE {TABLE} ADD CONSTRAINT "{n}" {d}' for n, d in found]
        else:
            cursor.execute(
                "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid "
                "JOIN pg_am a ON a.oid = i.relam "
                "WHERE x.indrelid = %s::regclass AND NOT x.indisunique AND NOT x.indisprimary "
                "AND (%s = 'indexes' OR a.amname = 'gin')",
                [TABLE, what],
            )
            found = cursor.fetchall()
            for name, _ in found:
                cursor.execute(f'DROP INDEX "{name}"')
            back = [definition for _, definition in found]
    print(f"# what-if: dropped {len(back)} {what} of {TABLE} for this run")
    return back


def restore_dropped(statements: list[str]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--orgaos", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--synchronous-commit", default="", help="what-if: SET synchronous_commit (e.g. off)"
    )
    parser.add_argument("--pages-per-txn", type=int, default=1, help="what-if: pages per COMMIT")
    parser.add_argument(
        "--drop",
        choices=["fks", "indexes", "gin"],
        help="what-if: drop pncp_contratacao's foreign keys, its non-unique indexes or its GIN "
        "(full-text) indexes in the benchmark database for the run (put back afterwards)",
    )
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    what_if = {"synchronous_commit": args.synchronous_commit, "pages_per_txn": args.pages_per_txn}
    _setup.bootstrap()
    info = _setup.machine_info()
    _setup.print_machine(info)
    with tempfile.TemporaryDirectory(prefix="pncp-bench-") as tmp:
        files = _setup.save_pages(Path(tmp), args.n, seed=args.seed, orgaos=args.orgaos)
        _setup.truncate_records()
        dropped = drop(args.drop) if args.drop else []
        try:
            first = run(files, "first import", **what_if)
            _setup.vacuum_analyze(TABLE)
            again = run(files, "re-import unchanged", **what_if)
        finally:
            restore_dropped(dropped)
    path = _setup.write_results(
        f"breakdown{'-' + args.tag if args.tag else ''}",
        {"machine": info, "args": vars(args), "runs": [first, again]},
    )
    print(f"# results: {path}")


if __name__ == "__main__":
    main()
