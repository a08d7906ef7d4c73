"""Load and fault testing against a real Doorstep server on 127.0.0.1.

Used by the field simulator (`python -m loadtest.simulator`), the system tests in
tests/system/ and `python -m bench.soak`:

- `transport`: `FaultyTransport`, the one transport between a simulated phone and the
  server (meters every answer, injects faults on demand), and its `Meter`.
- `phone`: `Phone`, one agent's phone (the reference client) and what the agent records.
- `staff`: `StaffSession`, a dispatcher, privacy officer or admin.
- `logins`: the accounts to use, from the demo's logins file or the demo's names.
- `server_process`: gunicorn on the loopback, killable and restartable, with demo data.
- `fleet`: many phones at once, driven from threads.
- `checks`: what must hold afterwards, in the SQLite file and through the API.
- `trials`, `slow_clients`: crash-safety, contention and slowloris trials with figures.
- `simulator`: the field simulator's command line.

Every loop is bounded by a count and by a deadline; only processes a trial started are
ever signalled.
"""
