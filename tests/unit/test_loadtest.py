"""The load-test tooling's own rules: whose credentials a run uses, and what its transport
does to traffic. No server: a run that cannot start must say why before any request."""

from __future__ import annotations

import json
import random

import pytest

from loadtest import simulator
from loadtest.checks import StoreCheck
from loadtest.logins import LoginsError, demo_logins, read_logins
from loadtest.transport import FAULTS, FaultyTransport, Meter
from sync.client import TransportError, TransportResponse

BASE = "http://127.0.0.1:5000/api/v1"


def _account(username: str, role: str) -> dict:
    device = f"phone-{username}" if role == "agent" else None
    return {"username": username, "password": f"pw-{username}", "role": role, "device_id": device}


def _logins_file(tmp_path, accounts: list[dict], base_url: str = BASE):
    path = tmp_path / "demo-logins.json"
    path.write_text(json.dumps({"base_url": base_url, "accounts": accounts}))
    return path


STAFF = [
    _account("admin01", "admin"),
    _account("dispatcher02", "dispatcher"),
    _account("dispatcher01", "dispatcher"),
    _account("privacy01", "privacy_officer"),
]


def test_a_logins_file_gives_each_account_its_own_password_and_agents_by_name(tmp_path):
    agents = [_account(name, "agent") for name in ("agent03", "agent01", "agent02")]
    logins = read_logins(_logins_file(tmp_path, agents + STAFF))

    chosen = logins.agents(2)

    assert [(a.username, a.password, a.device_id) for a in chosen] == [
        ("agent01", "pw-agent01", "phone-agent01"),
        ("agent02", "pw-agent02", "phone-agent02"),
    ]
    assert logins.base_url == BASE
    assert logins.staff("dispatcher").username == "dispatcher01"
    assert logins.staff("dispatcher", "dispatcher02").password == "pw-dispatcher02"
    assert logins.staff("privacy_officer").password == "pw-privacy01"


def test_a_shared_password_stands_for_the_demo_accounts():
    logins = demo_logins("one-pw", 3)

    assert [a.username for a in logins.agents(3)] == ["agent01", "agent02", "agent03"]
    assert (logins.staff("admin").username, logins.staff("admin").password) == ("admin01", "one-pw")
    assert {login.password for login in logins.accounts} == {"one-pw"}
    assert logins.base_url is None
    with pytest.raises(LoginsError, match="4 agents wanted, 3"):
        logins.agents(4)


def test_an_unreadable_logins_file_is_refused(tmp_path):
    path = tmp_path / "demo-logins.json"
    path.write_text('{"accounts": [{"username": "agent01"}]}')

    with pytest.raises(LoginsError, match="not a logins file"):
        read_logins(path)


@pytest.mark.parametrize(
    ("accounts", "base_url", "message"),
    [
        ([_account("agent01", "agent"), *STAFF], BASE, "2 agents wanted, 1"),
        ([_account(f"agent0{i}", "agent") for i in (1, 2)] + STAFF[:1], BASE, "no dispatcher"),
        (
            [_account(f"agent0{i}", "agent") for i in (1, 2)] + STAFF,
            "http://doorstep.example.com/api/v1",
            "only talks to the loopback",
        ),
    ],
)
def test_the_simulator_stops_before_any_request_when_it_cannot_run(
    tmp_path, capsys, accounts, base_url, message
):
    path = _logins_file(tmp_path, accounts, base_url)

    status = simulator.main(["--logins", str(path), "--agents", "2"])

    output = capsys.readouterr()
    assert status == 2
    assert message in output.out + output.err


class _Server:
    """Answers every push with the records accepted; counts what reached it."""

    def __init__(self) -> None:
        self.received: list[str] = []

    def request(self, method, path, *, json=None, data=None, headers=None, params=None):
        self.received.append(path)
        outcomes = [{"record_id": r["id"], "status": "accepted"} for r in json["records"]]
        return TransportResponse(200, {}, {"outcomes": outcomes})


def _push(record_id: str) -> dict:
    return {"records": [{"id": record_id, "kind": "visit_report"}]}


def test_faults_hit_only_sync_traffic_and_the_meter_counts_what_the_server_answered():
    server, meter = _Server(), Meter()
    transport = FaultyTransport(server, meter, rng=random.Random(3), rate=1.0)
    transport.enabled = True
    outcomes: list[str] = []
    for number in range(20):
        try:
            transport.request("POST", "/sync/push", json=_push(f"r{number}"))
            outcomes.append("answered")
        except TransportError:
            outcomes.append("lost")
    transport.request("POST", "/auth/login", json=_push("login"))

    injected = transport.injected
    assert sum(injected.values()) == 20  # rate 1.0: every sync request, not the login
    assert server.received[-1] == "/auth/login"
    assert all(injected[fault] > 0 for fault in FAULTS)
    # Lost requests and simulated 503s never reach the server; a lost answer arrives once,
    # a duplicate twice, a stale replay brings an older batch along.
    arrived = injected["lost_answer"] + 2 * injected["duplicate"] + 2 * injected["stale_replay"]
    assert server.received.count("/sync/push") == arrived
    assert meter.requests == len(server.received)  # the meter counts the server's answers
    assert outcomes.count("lost") == injected["lost_request"] + injected["lost_answer"]


def test_a_disabled_transport_passes_everything_through():
    server, meter = _Server(), Meter()
    transport = FaultyTransport(server, meter, rng=random.Random(3), rate=1.0)

    answer = transport.request("POST", "/sync/push", json=_push("r1"))

    assert answer.status == 200 and server.received == ["/sync/push"]
    assert transport.injected == {} and meter.acknowledged == {"r1"}


def test_a_store_is_intact_with_or_without_amcheck_and_not_with_a_problem():
    def check(integrity):
        return StoreCheck(integrity, {}, 0, [], [], [])

    assert check(["ok"]).intact
    assert check(["ok (amcheck not available: unique values checked)"]).intact
    assert not check(["sync_records(id): 1 duplicated values"]).intact
    assert not check(["ok", "visits_pkey: index is corrupt"]).intact
    assert not check([]).intact
