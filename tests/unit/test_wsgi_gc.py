"""The production entry point (`wsgi:app`, what gunicorn and the README's `flask run` load)
tunes the cyclic garbage collector for request-shaped work: the app's own long-lived objects
frozen out of its reach, and a first threshold high enough that a request's short-lived
objects are freed before a collection promotes them (docs/sync.md, the fourth round)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wsgi_freezes_the_app_and_raises_the_first_threshold(tmp_path):
    env = dict(os.environ)
    env.update(DOORSTEP_DATABASE=str(tmp_path / "w.db"), DOORSTEP_STATE_DIR=str(tmp_path))
    probe = (
        "import gc, json, wsgi; "
        "api = wsgi.app.extensions['flask-smorest']['apis']['']['ext_obj']; "
        "print(json.dumps([gc.get_threshold(), gc.get_freeze_count(), wsgi.app.name, "
        "len(api._undocumented), len(api.__dict__['_spec'].to_dict()['paths'])]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    threshold, frozen, name, undocumented, paths = json.loads(out.stdout.strip().splitlines()[-1])
    assert threshold == [20_000, 10, 10]
    # Modules, schemas and the OpenAPI document: tens of thousands of objects.
    assert frozen > 10_000
    assert name == "server"
    # The OpenAPI document was written before the fork (api.DoorstepApi writes it when first
    # read): no worker's first request pays for it.
    assert undocumented == 0 and paths > 50
