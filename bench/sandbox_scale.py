"""Scale benchmark of the sandbox: seconds to ready at 100k accounts and UsersRequest paging speed.

    .venv/bin/python bench/sandbox_scale.py           # --users 100000
    .venv/bin/python bench/sandbox_scale.py --quick   # --users 2000 --limit 250 (CI smoke)

The last line printed is one JSON object: {"ready_s", "p50_ms", "p99_ms", "pages_per_s",
"rows_per_s", "users", "pages"}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from platforms.sandbox.process import start_sandbox as start_unjudged_sandbox
from tests.sandbox_process import start_sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2,000 accounts in pages of 250 (CI smoke run)")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="page size (default 5000)")
    parser.add_argument("--tick-rate", default="4", help="market ticks/s while paging (default 4)")
    args = parser.parse_args(argv)
    users = args.users or (2_000 if args.quick else 100_000)
    # quick: still 8 pages a pass, so that p99 and the second pass mean something
    args.limit = args.limit or (250 if args.quick else 5000)

    t0 = time.monotonic()
    # the smoke run skips the tests' exchange recording and the OpenAPI judging at stop
    start = start_unjudged_sandbox if args.quick else start_sandbox
    info = start(
        "--users", str(users), "--seed", "1", "--tick-rate", args.tick_rate, timeout=120
    )
    ready_s = time.monotonic() - t0
    try:
        token = httpx.post(
            f"{info.authority}/connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": info.client_id,
                "client_secret": info.client_secret,
            },
        ).json()["access_token"]
        url = f"{info.base_url}/api/v2/MT4/{info.mt4_id}/UsersRequest"
        timings: list[float] = []
        rows = 0
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            for _round in range(2):  # the second pass shows paging does not degrade
                cursor = None
                while True:
                    params = {"limit": args.limit, **({"cursor": cursor} if cursor else {})}
                    s = time.perf_counter()
                    r = client.get(url, params=params)
                    body = r.json()
                    timings.append(time.perf_counter() - s)
                    rows += len(body["data"])
                    if not body["meta"]["paging"]["hasMore"]:
                        break
                    cursor = body["meta"]["paging"]["nextCursor"]
        total = sum(timings)
        timings_ms = sorted(t * 1000 for t in timings)
        p99 = timings_ms[min(len(timings_ms) - 1, round(0.99 * (len(timings_ms) - 1)))]
        result = {
            "users": users,
            "ready_s": round(ready_s, 2),
            "pages": len(timings),
            "p50_ms": round(statistics.median(timings_ms), 1),
            "p99_ms": round(p99, 1),
            "pages_per_s": round(len(timings) / total, 1),
            "rows_per_s": round(rows / total),
        }
        print(
            f"ready in {ready_s:.2f}s; {len(timings)} pages of {args.limit}: "
            f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
            f"{result['pages_per_s']} pages/s, "
            f"{result['rows_per_s']} rows/s"
        )
        print(json.dumps(result))
    finally:
        info.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
