"""Big venues: page sizes by venue size, and first paint on a throttled phone. A benchmark, not a test.

    .venv/bin/python -m tests.load.venue_pages                       # 2k, 20k, 60k seats; 1,000-seat sections
    .venv/bin/python -m tests.load.venue_pages --rows 40 --seats 50  # the generator's 2,000-seat sections
    .venv/bin/python -m tests.load.venue_pages --no-browser          # sizes only

It starts the stack the benchmark starts (embedded PostgreSQL unless
DATABASE_URL is set, the migrations, gunicorn with the launcher's command
line), lays out one stadium per size with the seat generator (sections of
`--rows` x `--seats`, ten to a line), and reads over loopback:

- the bytes of the event page (the overview, for a venue over
  LARGE_VENUE_SEATS), of a section page and of a section's seat-status poll,
  as sent and gzipped (what a proxy that compresses would send);
- with `--browser` (the default), Chromium at 390 x 844 with the CPU slowed
  `--throttle` times (CDP Emulation.setCPUThrottlingRate): the overview's and
  a section page's first contentful paint and DOMContentLoaded, from the
  page's own performance entries, median of `--runs` cold loads.
"""
from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import time
import urllib.request
from datetime import datetime, timezone

from tests.load.harness import Data, Stack, migrate, start_database

PHONE = {"width": 390, "height": 844}
PAINT = """() => {
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  return {fcp: fcp ? fcp.startTime : null, dcl: nav.domContentLoadedEventEnd, bytes: nav.transferSize};
}"""


def fetch(url: str, headers: dict | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=60) as response:
        return response.read()


def chromium() -> str:
    for path in (os.environ.get("CHROMIUM_PATH"), "/usr/lib/chromium/chromium", "/usr/bin/chromium"):
        if path and os.path.exists(path):
            return path
    raise SystemExit("Chromium is missing (apt-get install chromium)")


def paint_times(base: str, paths: dict[str, str], *, throttle: float, runs: int) -> dict[str, dict[str, float]]:
    from playwright.sync_api import sync_playwright

    found: dict[str, dict[str, list[float]]] = {name: {"fcp": [], "dcl": []} for name in paths}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--disable-gpu", "--disable-quic"])
        try:
            for _ in range(runs):
                for name, path in paths.items():
                    context = browser.new_context(viewport=PHONE, device_scale_factor=3, is_mobile=True)
                    page = context.new_page()
                    cdp = context.new_cdp_session(page)
                    cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
                    page.goto(base + path, wait_until="load")
                    page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0",
                                           timeout=60_000)
                    entry = page.evaluate(PAINT)
                    found[name]["fcp"].append(entry["fcp"])
                    found[name]["dcl"].append(entry["dcl"])
                    context.close()
        finally:
            browser.close()
    return {name: {k: statistics.median(v) for k, v in kinds.items()} for name, kinds in found.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 20_000, 60_000])
    parser.add_argument("--rows", type=int, default=25, help="rows per section")
    parser.add_argument("--seats", type=int, default=40, help="seats per row")
    parser.add_argument("--throttle", type=float, default=4.0, help="CPU slowdown for the browser")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-browser", dest="browser", action="store_false")
    args = parser.parse_args(argv)

    database = start_database(os.environ.get("DATABASE_URL"))
    # A 2,000-seat venue is under the default threshold: it shows today's whole map.
    stack = Stack(database.url, workers=2, threads=2, sweep=False)
    lines = []
    try:
        migrate(database.url, stack.secret_key)
        with stack:
            data = Data(database.url, stack.secret_key)
            base = stack.instances[0].base
            per_section = args.rows * args.seats
            for size in args.sizes:
                sections = max(1, size // per_section)
                started = time.perf_counter()
                event = data.stadium(sections, args.rows, args.seats, title=f"Stadium {size}")
                generated = time.perf_counter() - started
                section = f"/events/{event}/sections/{sections // 2 + 1}"
                pages = {"event page": f"/events/{event}", "section page": section,
                         "section poll": f"{section}/seat-status"}
                for name, path in pages.items():
                    body = fetch(base + path, {"HX-Request": "true"} if "poll" in name else None)
                    packed = len(gzip.compress(body))
                    lines.append(f"{sections * per_section:>7,} seats ({sections} x {per_section:,}; generated in"
                                 f" {generated:4.1f} s)  {name:<13} {len(body):>10,} B  gzipped {packed:>8,} B")
                if args.browser and sections * per_section == max(args.sizes):
                    times = paint_times(base, {k: v for k, v in pages.items() if "poll" not in k},
                                        throttle=args.throttle, runs=args.runs)
                    for name, t in times.items():
                        lines.append(f"{sections * per_section:>7,} seats, 390x844, CPU /{args.throttle:g}: {name:<13}"
                                     f" first contentful paint {t['fcp']:7.0f} ms  DOMContentLoaded {t['dcl']:7.0f} ms"
                                     f" (median of {args.runs})")
            data.dispose()
    finally:
        database.stop()
    print(f"Ticketbooth big-venue pages, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC;"
          f" load average {os.getloadavg()[0]:.1f}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
