"""The console's day board for 50 agents x 25 visits (1,250 visits, each borrower ledgered):
server render p95 over sequential requests through a real gunicorn process, and the first
paint of the board in Debian's Chromium (Playwright) on loopback. Targets: render p95 under
150 ms, first paint under 1 s. Prints figures; never fails on time.

    .venv/bin/python -m bench.console [--requests 60] [--paints 10]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time

import requests

from bench.common import PASSWORD, bench_env, flask, scratch_dir, server, summary
from bench.day_view import parse_timing
from tests.system.console_browser import chromium, chromium_available

# The first contentful paint of the page, once the browser reports it (or None after 5 s).
_FIRST_PAINT = """() => new Promise(resolve => {
  new PerformanceObserver(list => {
    const entry = list.getEntriesByName('first-contentful-paint')[0];
    if (entry) resolve(entry.startTime);
  }).observe({type: 'paint', buffered: true});
  setTimeout(() => resolve(null), 5000);
})"""
_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def signed_in(site: str, username: str) -> requests.Session:
    """A console session, signed in through the form as a browser does."""
    session = requests.Session()
    page = session.get(f"{site}/console/sign-in", timeout=30).text
    token = _TOKEN.search(page).group(1)
    form = {"username": username, "password": PASSWORD, "csrf_token": token}
    answer = session.post(f"{site}/console/sign-in", data=form, timeout=30, allow_redirects=False)
    assert answer.status_code == 302, answer.text[:500]
    return session


def render_times(
    site: str, count: int, query: str = ""
) -> tuple[list[float], list[float], int, int]:
    """Client-observed times of the board and its ledger time (Server-Timing)."""
    session = signed_in(site, "dispatcher01")
    first = session.get(f"{site}/console/board{query}", timeout=60)
    rows = first.text.count('<tr id="visit-')
    observed, ledger = [], []
    for _ in range(count):
        started = time.perf_counter()
        answer = session.get(f"{site}/console/board{query}", timeout=60)
        observed.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200
        ledger.append(parse_timing(answer.headers.get("Server-Timing", "")).get("ledger", 0.0))
    return observed, ledger, rows, len(first.content)


def first_agent(site: str) -> str:
    """The id of the first agent on the board (the one a dispatcher opens first)."""
    page = signed_in(site, "dispatcher01").get(f"{site}/console/board", timeout=60).text
    return re.search(r'id="agent-(\d+)"', page).group(1)


def first_paints(site: str, count: int) -> list[float]:
    """First contentful paint of the board (ms after navigation start), fresh page each time."""
    paints = []
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        page.goto(f"{site}/console/sign-in")
        page.fill("#username", "dispatcher01")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        for _ in range(count):
            page.goto(f"{site}/console/board", wait_until="load")
            paint = page.evaluate(_FIRST_PAINT)
            if paint is not None:
                paints.append(float(paint))
        context.close()
    return paints


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--visits-per-agent", type=int, default=25)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--paints", type=int, default=10)
    args = parser.parse_args()
    with scratch_dir() as workdir:
        env = bench_env(workdir)
        visits = args.agents * args.visits_per_agent
        flask(
            env,
            "demo",
            "--agents",
            str(args.agents),
            "--visits-per-agent",
            str(args.visits_per_agent),
            "--borrowers",
            str(max(2000, visits * 2)),
        )
        with server(env, workers=1) as base:
            site = base.removesuffix("/api/v1")
            # The board as it opens (every agent counted), with one agent's visits open, and
            # with every agent's visits open (1,250 cards built and ledgered), in one run.
            boards = (
                ("counts only", ""),
                ("one agent open", f"?agent={first_agent(site)}"),
                ("every agent open", "?agent=all"),
            )
            for name, query in boards:
                observed, ledger, rows, size = render_times(site, args.requests, query)
                print(
                    f"day board, {name}: {args.agents} agents, {rows} visit rows, "
                    f"{size / 1024:.0f} KiB of HTML"
                )
                print(
                    f"  server render (GET /console/board{query}, {args.requests} sequential): "
                    f"{summary(observed)}"
                )
                print(f"  of which ledger writes: {statistics.fmean(ledger):.2f} ms per page")
            if chromium_available():
                paints = first_paints(site, args.paints)
                if paints:
                    print(f"first contentful paint in Chromium (loopback): {summary(paints)}")
                else:
                    print("first paint: Chromium reported none")
            else:
                print("first paint: skipped, Chromium is not installed")


if __name__ == "__main__":
    main()
