#!/usr/bin/env python3
"""Baseline for docs/benchmarks.md: the reads `ovhform plan` needs, done the way a python-ovh
user would write them (list the servers, GET each one, resolve each non-disk boot id).

With --expanded it instead asks for whole server objects page by page
(`X-Pagination-Mode: CachedObjectList-Pages`, the API feature ovhform's client uses), to show
how much of the difference is the API economy rather than the language.

Talks only to the URL given with --url (ovhform's simulator on 127.0.0.1). Prints one JSON
line: {"servers": N, "calls": N, "seconds": S, "threads": T, "expanded": bool}.
Run by examples/bench_plan_e2e.rs.
"""
import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

import ovh


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8080/1.0")
    ap.add_argument("--application-key", required=True)
    ap.add_argument("--application-secret", required=True)
    ap.add_argument("--consumer-key", required=True)
    ap.add_argument("--threads", type=int, default=1, help="parallel GETs (1 = sequential)")
    ap.add_argument("--expanded", action="store_true",
                    help="read whole server objects with the expanded listing (pages)")
    ap.add_argument("--page-size", type=int, default=500, help="objects per page with --expanded")
    args = ap.parse_args()

    if not args.url.startswith(("http://127.", "http://localhost")):
        raise SystemExit("refusing a non-loopback URL: this benchmark only targets the simulator")
    ovh.client.ENDPOINTS["ovhform-sim"] = args.url
    client = ovh.Client(
        endpoint="ovhform-sim",
        application_key=args.application_key,
        application_secret=args.application_secret,
        consumer_key=args.consumer_key,
    )
    start = time.monotonic()
    # python-ovh fetches /auth/time itself before its first signed call.
    calls = 1
    if args.expanded:
        servers, pages = list_expanded(client, "/dedicated/server", args.page_size)
        calls += pages
    else:
        names = client.get("/dedicated/server")
        calls += 1

        def get_server(name):
            return client.get(f"/dedicated/server/{name}")

        with ThreadPoolExecutor(max_workers=max(1, args.threads)) as pool:
            servers = list(pool.map(get_server, names))
        calls += len(servers)

    boots = {}
    for s in servers:
        boot_id = s.get("bootId")
        if boot_id is None or boot_id == 1 or boot_id in boots:
            continue
        boots[boot_id] = client.get(f"/dedicated/server/{s['name']}/boot/{boot_id}")
        calls += 1
    elapsed = time.monotonic() - start
    print(json.dumps({"servers": len(servers), "calls": calls, "seconds": round(elapsed, 4),
                      "threads": args.threads, "expanded": args.expanded}))


def list_expanded(client, path, size):
    """Every object of an expanded listing, and the number of pages (requests) it took."""
    objects, page = [], 0
    while True:
        page += 1
        resp = client.raw_call("GET", path, headers={
            "X-Pagination-Mode": "CachedObjectList-Pages",
            "X-Pagination-Size": str(size),
            "X-Pagination-Number": str(page),
        })
        resp.raise_for_status()
        items = resp.json()
        objects.extend(items)
        total = int(resp.headers.get("X-Pagination-Elements", len(objects)))
        if not items or len(objects) >= total:
            return objects, page


if __name__ == "__main__":
    main()
