"""Driving the web console through the Flask test client: sign in, read forms' CSRF tokens."""

from __future__ import annotations

import re

from tests.conftest import PASSWORD

_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _TOKEN.search(html)
    assert found, "no form with a CSRF token on this page"
    return found.group(1)


def sign_in(client, username: str, password: str = PASSWORD):
    """Sign in as a browser does: read the form, post it with its token."""
    page = client.get("/console/sign-in")
    token = csrf_of(page.get_data(as_text=True))
    return client.post(
        "/console/sign-in",
        data={"username": username, "password": password, "csrf_token": token},
    )


def post_form(client, page_url: str, action: str, data: dict):
    """Post a form the way its page offers it (with that page's CSRF token)."""
    page = client.get(page_url)
    token = csrf_of(page.get_data(as_text=True))
    return client.post(action, data={**data, "csrf_token": token})
