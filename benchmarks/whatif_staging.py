"""What a per-page ``TRUNCATE`` of the temporary staging table costs, against alternatives.

``pncp.ingest.upsert_rows`` COPYs each page into ``_stg_<table>`` after a ``TRUNCATE`` of it.
On PostgreSQL, TRUNCATE gives the table (and its TOAST table and TOAST index: ``raw`` is
jsonb) new files, and the old ones are unlinked at COMMIT, so the page's COMMIT pays for it
too. This times K transactions of "empty the staging table + text COPY of a page of 50 real
rows + COMMIT" for:

* ``truncate``: TRUNCATE per page (what the importer does);
* ``on_commit_delete``: a staging table ``ON COMMIT DELETE ROWS`` (emptied in place at
  COMMIT, no new files).

No row reaches ``pncp_contratacao``: only the staging overhead is measured.

    .venv/bin/python benchmarks/whatif_staging.py --pages 400
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _setup
from benchmarks.bench_ingest import TABLE, floor_columns, floor_rows, read_page


def run_variant(conn, variant: str, pages: list[list[tuple]], columns: list[str]) -> dict:
    cols = ", ".join(columns)
    staging = f"_whatif_stg_{variant}"
    on_commit = " ON COMMIT DELETE ROWS" if variant == "on_commit_delete" else ""
    conn.execute(f"DROP TABLE IF EXISTS {staging}")
    conn.execute(
        f"CREATE TEMP TABLE {staging}{on_commit} AS SELECT {cols} FROM {TABLE} WITH NO DATA"
    )
    conn.commit()
    empty = commit = copy_time = 0.0
    start = time.perf_counter()
    for rows in pages:
        t0 = time.perf_counter()
        if variant == "truncate":
            conn.execute(f"TRUNCATE {staging}")
        t1 = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(f"COPY {staging} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        t2 = time.perf_counter()
        conn.commit()
        t3 = time.perf_counter()
        empty += t1 - t0
        copy_time += t2 - t1
        commit += t3 - t2
    total = time.perf_counter() - start
    conn.execute(f"DROP TABLE {staging}")
    conn.commit()
    n = len(pages)
    return {
        "variant": variant,
        "pages": n,
        "ms_per_page": 1000 * total / n,
        "truncate_ms": 1000 * empty / n,
        "copy_ms": 1000 * copy_time / n,
        "commit_ms": 1000 * commit / n,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    _setup.bootstrap()
    info = _setup.machine_info()
    _setup.print_machine(info)
    import psycopg

    columns = floor_columns()
    with tempfile.TemporaryDirectory(prefix="pncp-bench-") as tmp:
        files = _setup.save_pages(Path(tmp), args.pages * _setup.PAGE_SIZE)
        ids = defaultdict(lambda: 1)
        pages = [list(floor_rows(read_page(f), ids, columns)) for f in files]
    conn = psycopg.connect(_setup.database_url())
    tries: dict[str, list[dict]] = defaultdict(list)
    for _ in range(args.rounds):  # interleaved, so drifting load hits every variant alike
        for variant in ("truncate", "on_commit_delete"):
            tries[variant].append(run_variant(conn, variant, pages, columns))
    conn.close()
    print(f"\n{'variant':<18} {'ms/page':>8} {'empty':>7} {'COPY':>7} {'COMMIT':>7}  (medians)")
    summary = {}
    for variant, results in tries.items():
        med = {
            k: statistics.median(r[k] for r in results)
            for k in ("ms_per_page", "truncate_ms", "copy_ms", "commit_ms")
        }
        summary[variant] = med
        print(
            f"{variant:<18} {med['ms_per_page']:8.2f} {med['truncate_ms']:7.2f} "
            f"{med['copy_ms']:7.2f} {med['commit_ms']:7.2f}"
        )
    path = _setup.write_results(
        "whatif-staging", {"machine": info, "args": vars(args), "tries": tries, "summary": summary}
    )
    print(f"# results: {path}")


if __name__ == "__main__":
    main()
