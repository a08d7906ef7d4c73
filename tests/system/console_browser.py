"""A console server on 127.0.0.1 and Debian's Chromium driven by Playwright, for the browser
tests and bench/console.py. Playwright's own browser download is not used: the system
Chromium is launched by path."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loadtest.server_process import PASSWORD, Gunicorn, load_demo, server_env

CHROMIUM = os.environ.get("CONSOLE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def chromium_available() -> bool:
    return Path(CHROMIUM).exists()


@contextmanager
def console_server(
    folder: Path, *, agents: int, visits_per_agent: int, **env: str
) -> Iterator[str]:
    """A gunicorn server with the demo data set; yields its base URL (no path)."""
    environment = server_env(folder, **env)
    load_demo(
        environment,
        agents=agents,
        visits_per_agent=visits_per_agent,
        borrowers=max(200, agents * visits_per_agent * 2),
    )
    server = Gunicorn(environment, folder / "server.log", workers=2)
    try:
        server.start()
        yield server.base_url.removesuffix("/api/v1")
    finally:
        server.stop()


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (the system's), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start.
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    """Sign in through the form, by its labels, as a person would."""
    page.goto(f"{base}/console/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    # The form's answer is a new page (the console, or the form again with its error):
    # wait until it has loaded, or a read right after may see the page half parsed (CI
    # once read an empty menu from /console/ under load).
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
