"""Benchmark: decoding a whole UsersRequest answer, ours (msgspec) vs the vendor SDK.

Starts a sandbox (100,000 accounts; ``--quick`` → 2,000), fetches ONE ``UsersRequest``
answer without ``limit`` as raw bytes, then decodes those bytes N times:

* ours — ``envelope_decoder(list[MT4User]).decode(raw)``: envelope + typed records in one
  msgspec pass (exactly what ``client.mt4.users_request()`` does);
* SDK — ``[MT4User.from_dict(d) for d in json.loads(raw)["data"]]`` with the SDK's
  generated attrs model (the SDK's typed path; its ``unwrap`` additionally re-parses the
  envelope with pydantic, also timed and printed as ``sdk_full_ms``).

Then measures sequential small reads (``ServerTime``) with our sync client for 10 s
(``--quick`` → 1 s). The last line printed is one JSON object. ``--quick`` is CI's smoke run
(same figures, a few seconds): a sandbox of 2,000 accounts starts and stops in ~2 s, and its
exchanges are not recorded for the OpenAPI judge (which would re-validate every recorded row).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cplugin_webapi_sdk._generated.models.mt4_user import MT4User as SdkMT4User  # noqa: E402
from cplugin_webapi_sdk.unwrap import unwrap_with_meta  # noqa: E402

from platforms.client import (  # noqa: E402
    MT4,
    ManagerClient,
    MT4User,
    PlatformBreaker,
    PlatformConfig,
    envelope_decoder,
)
from platforms.sandbox.process import start_sandbox as start_unjudged_sandbox  # noqa: E402
from tests.sandbox_process import start_sandbox  # noqa: E402


class _RawResponse:
    """What the SDK's unwrap() duck-types on: status_code, content, headers."""

    def __init__(self, content: bytes) -> None:
        self.status_code = 200
        self.content = content
        self.headers: dict[str, str] = {}


def _time(fn, repeat: int) -> tuple[float, object]:
    samples = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 rows, 1 s of reads (CI smoke)")
    parser.add_argument("--repeat", type=int, default=None, help="decode passes (median)")
    args = parser.parse_args()
    users = 2_000 if args.quick else 100_000
    repeat = args.repeat or 3
    read_seconds = 1.0 if args.quick else 10.0

    # the smoke run skips the tests' exchange recording and the OpenAPI judging at stop
    start = start_unjudged_sandbox if args.quick else start_sandbox
    info = start("--users", str(users), "--tick-rate", "0", timeout=300)
    try:
        config = PlatformConfig(
            platform_id=info.mt4_id,
            kind="MT4",
            api_base_url=info.base_url,
            sidecar_base_url=info.sidecar_url,
            authority=info.authority,
            client_id=info.client_id,
            client_secret=info.client_secret,
        )
        breaker = PlatformBreaker(str(uuid.uuid4()))
        with ManagerClient(config, breaker=breaker) as client:
            started = time.perf_counter()
            status, raw = client.fetch_raw(MT4["UsersRequest"], timeout=300)
            fetch_ms = (time.perf_counter() - started) * 1000
            if status != 200:
                raise SystemExit(f"UsersRequest answered HTTP {status}")
            print(f"fetched {len(raw) / 1e6:.1f} MB in {fetch_ms:.0f} ms")

            decoder = envelope_decoder(list[MT4User])
            ours_ms, envelope = _time(lambda: decoder.decode(raw), repeat)
            rows = len(envelope.data)

            def sdk():
                return [SdkMT4User.from_dict(d) for d in json.loads(raw)["data"]]

            sdk_ms, sdk_rows = _time(sdk, repeat)

            def sdk_full():
                data, _meta = unwrap_with_meta(_RawResponse(raw))
                return [SdkMT4User.from_dict(d) for d in data]

            sdk_full_ms, _ = _time(sdk_full, max(1, repeat // 2))
            assert len(sdk_rows) == rows == users, (len(sdk_rows), rows, users)
            assert sdk_rows[0].login == envelope.data[0].login
            ratio = sdk_ms / ours_ms
            print(
                f"rows {rows}: ours {ours_ms:.1f} ms, SDK from_dict {sdk_ms:.1f} ms "
                f"({ratio:.1f}x), SDK unwrap+from_dict {sdk_full_ms:.1f} ms "
                f"({sdk_full_ms / ours_ms:.1f}x)"
            )

            client.mt4.server_time()  # token + connection warm
            latencies = []
            deadline = time.perf_counter() + read_seconds
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                client.mt4.server_time()
                latencies.append((time.perf_counter() - t0) * 1000)
            elapsed = read_seconds
            latencies.sort()
            p50 = latencies[len(latencies) // 2]
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            rps = len(latencies) / elapsed
            print(
                f"ServerTime: {len(latencies)} requests in {elapsed:.0f} s = {rps:.0f}/s, "
                f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"
            )
    finally:
        info.stop()

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "ratio": round(ratio, 2),
                "ours_ms": round(ours_ms, 2),
                "sdk_ms": round(sdk_ms, 2),
                "rows": rows,
                "p50_ms": round(p50, 3),
                "p99_ms": round(p99, 3),
                "requests_per_s": round(rps, 1),
                "peak_rss_mb": round(peak_rss_mb, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
