"""Case import: good rows kept, bad rows reported, idempotent on the external id."""

import csv
import io
import json

from tests.conftest import case_row


def _post(client, auth, body, content_type):
    return client.post(
        "/api/v1/cases/import",
        data=body,
        headers={**auth.headers("dispatcher"), "Content-Type": content_type},
    )


def _jsonl(rows):
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows)


def test_jsonl_keeps_good_rows_and_reports_bad_ones(world, client, auth, db):
    rows = [
        case_row(10),
        case_row(11, overdue_amount="-5"),
        "{not json",
        case_row(12, currency="yuan"),
        case_row(13, surprise=1),
        case_row(14),
    ]
    response = _post(client, auth, _jsonl(rows), "application/x-ndjson")
    assert response.status_code == 200
    report = response.json
    assert (report["created"], report["rejected"], report["total_rows"]) == (2, 4, 6)
    errors = {e["row"]: e for e in report["errors"]}
    assert errors[2]["field"] == "overdue_amount" and errors[2]["case_external_id"] == "C-0011"
    assert "JSON" in errors[3]["message"]
    assert errors[4]["field"] == "currency"
    assert errors[5]["field"] == "surprise"
    stored = {r["external_id"] for r in db.query("SELECT external_id FROM cases")}
    assert {"C-0010", "C-0014"} <= stored and not {"C-0011", "C-0012", "C-0013"} & stored


def test_reimport_is_idempotent_and_a_change_bumps_the_version(world, client, auth, db):
    rows = [case_row(20), case_row(21)]
    first = _post(client, auth, _jsonl(rows), "application/x-ndjson").json
    assert first["created"] == 2
    again = _post(client, auth, _jsonl(rows), "application/x-ndjson").json
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    rows[1]["overdue_amount"] = "999.99"
    changed = _post(client, auth, _jsonl(rows), "application/x-ndjson").json
    assert (changed["updated"], changed["unchanged"]) == (1, 1)
    case = next(db.query("SELECT version, overdue_amount FROM cases WHERE external_id = 'C-0021'"))
    assert case == {"version": 2, "overdue_amount": "999.99"}
    assert (
        db.execute("SELECT count(*) FROM borrowers WHERE external_id = 'B-0021'").fetchone()[0] == 1
    )


def test_csv_import(world, client, auth, db):
    out = io.StringIO()
    columns = [
        "case_external_id",
        "borrower_external_id",
        "full_name",
        "phones",
        "contacts",
        "product",
        "overdue_amount",
        "currency",
        "days_past_due",
        "hardship",
    ]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerow(
        {
            "case_external_id": "CSV-1",
            "borrower_external_id": "CB-1",
            "full_name": "Csv One",
            "phones": "13800000001;13800000002",
            "contacts": json.dumps([{"name": "Neighbour"}]),
            "product": "Card",
            "overdue_amount": "10.5",
            "currency": "CNY",
            "days_past_due": "3",
            "hardship": "true",
        }
    )
    writer.writerow(
        {
            "case_external_id": "CSV-2",
            "borrower_external_id": "CB-2",
            "full_name": "",
            "product": "Card",
            "overdue_amount": "1",
            "currency": "CNY",
            "days_past_due": "x",
        }
    )
    response = _post(client, auth, out.getvalue(), "text/csv")
    assert response.status_code == 200
    assert (response.json["created"], response.json["rejected"]) == (1, 1)
    assert response.json["errors"][0]["row"] == 2
    borrower = next(db.query("SELECT phones, time_zone FROM borrowers WHERE external_id = 'CB-1'"))
    assert json.loads(borrower["phones"]) == ["13800000001", "13800000002"]
    assert borrower["time_zone"] == "Asia/Shanghai"
    case = next(db.query("SELECT hardship, overdue_amount FROM cases WHERE external_id = 'CSV-1'"))
    assert case == {"hardship": 1, "overdue_amount": "10.50"}


def test_import_needs_a_known_format_and_the_right_role(world, client, auth):
    response = _post(client, auth, "a,b", "text/plain")
    assert response.status_code == 415
    assert response.json["error"]["code"] == "unsupported_media_type"
    denied = client.post(
        "/api/v1/cases/import",
        data="{}",
        headers={**auth.headers("agent1"), "Content-Type": "application/x-ndjson"},
    )
    assert denied.status_code == 403


def test_cli_import_with_progress(app, tmp_path, db):
    path = tmp_path / "cases.jsonl"
    path.write_text(_jsonl([case_row(30), case_row(31, days_past_due=-1)]))
    result = app.test_cli_runner().invoke(args=["import-cases", str(path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "2 rows: 1 created, 0 updated, 0 unchanged, 1 rejected" in result.output
    assert "row 2: days_past_due" in result.output
    audit = list(
        db.query("SELECT action, details FROM staff_audit WHERE action = 'cases_imported'")
    )
    assert len(audit) == 1 and json.loads(audit[0]["details"])["created"] == 1


def test_empty_import_and_huge_numbers_are_4xx_not_500(world, client, auth):
    empty = _post(client, auth, "  \n", "application/x-ndjson")
    assert empty.status_code == 422 and empty.json["error"]["field"] == "body"
    huge = client.get(
        "/api/v1/records?visit_id=99999999999999999999999", headers=auth.headers("dispatcher")
    )
    assert huge.status_code == 422 and huge.json["error"]["field"] == "visit_id"
    path = client.get("/api/v1/visits/99999999999999999999999", headers=auth.headers("dispatcher"))
    assert path.status_code == 404
