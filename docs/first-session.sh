#!/bin/sh
# A first session over HTTP, against the demo (`flask --app wsgi demo`, then `flask --app wsgi
# run`). Needs curl and python3 (no jq). Logins come from the file the demo writes.
set -eu
LOGINS=${LOGINS:-instance/demo-logins.json}
if [ ! -f "$LOGINS" ]; then
  echo "$LOGINS not found: run '.venv/bin/flask --app wsgi demo' in the checkout first" >&2
  exit 1
fi
B=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["base_url"])' "$LOGINS")
ANSWER=$(mktemp)
trap 'rm -f "$ANSWER"' EXIT

# api METHOD PATH [curl options…]: print the JSON answer; stop on anything but a 2xx.
api() {
  method=$1 path=$2
  shift 2
  status=$(curl -sS -o "$ANSWER" -w '%{http_code}' -X "$method" "$B$path" "$@") || status=000
  case $status in
    2??) cat "$ANSWER" ;;
    000) echo "$method $B$path: no answer (is the server running?)" >&2; return 1 ;;
    *) echo "$method $path answered $status: $(cat "$ANSWER")" >&2; return 1 ;;
  esac
}

# json EXPRESSION: a Python expression over the JSON document on stdin, called d.
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# login ROLE: log in as the demo's first account with that role (an agent from its phone).
login() {
  body=$(python3 -c '
import json, sys
account = next(a for a in json.load(open(sys.argv[1]))["accounts"] if a["role"] == sys.argv[2])
body = {"username": account["username"], "password": account["password"]}
if account.get("device_id"):  # the phone the demo registered; without one, the phone enrols
    body["device_id"] = account["device_id"]
print(json.dumps(body))' "$LOGINS" "$1")
  api POST /auth/login -H 'Content-Type: application/json' -d "$body"
}

echo "== An agent logs in from its phone: its tokens are bound to that device id"
SESSION=$(login agent)
TOKEN=$(printf '%s' "$SESSION" | json 'd["access_token"]')
DEVICE=$(printf '%s' "$SESSION" | json 'd["device_id"]')
printf '%s' "$SESSION" | json '"%s on %s, token valid until %s" % (d["user"]["username"], d["device_id"], d["expires_at"])'

echo "== A dispatcher and a privacy officer log in (no device)"
SESSION=$(login dispatcher)
DISPATCHER_TOKEN=$(printf '%s' "$SESSION" | json 'd["access_token"]')
SESSION=$(login privacy_officer)
PO_TOKEN=$(printf '%s' "$SESSION" | json 'd["access_token"]')

echo "== The agent's day: visits in route order, each with a minimized borrower card"
DAY=$(api GET /me/day -H "Authorization: Bearer $TOKEN" -H "X-Device-Id: $DEVICE")
FIRST=$(printf '%s' "$DAY" | json 'json.dumps(next((v for v in d["visits"] if v["borrower"]), None))')
if [ "$FIRST" = null ]; then
  echo "no visit with a borrower card today: run the demo again, it plans today's visits" >&2
  exit 1
fi
printf '%s' "$DAY" | json '"%d visits on %s; the first with its card:" % (len(d["visits"]), d["date"])'
printf '%s' "$FIRST" | json 'json.dumps(d, indent=2, ensure_ascii=False)'
VISIT=$(printf '%s' "$FIRST" | json 'd["id"]')
BORROWER=$(printf '%s' "$FIRST" | json 'd["borrower"]["borrower_id"]')

echo "== The phone pushes a visit report for that visit (one outcome per record)"
REPORT=$(printf '%s' "$FIRST" | python3 -c '
import json, sys, uuid
from datetime import datetime, timezone
visit = json.load(sys.stdin)
now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
home = visit["borrower"]["home_geo"]
report = {"arrived_at": now, "departed_at": now, "outcome": "not_home",
          "location": {"lat": home["lat"], "lon": home["lon"], "accuracy_m": 15},
          "notes": "Nobody answered; left a notice."}
record = {"id": str(uuid.uuid4()), "kind": "visit_report", "visit_id": visit["id"],
          "device_seq": 1, "recorded_at": now, "body": report}
print(json.dumps({"device_time": now, "records": [record]}))')
PUSHED=$(api POST /sync/push -H "Authorization: Bearer $TOKEN" -H "X-Device-Id: $DEVICE" \
  -H 'Content-Type: application/json' -d "$REPORT")
printf '%s' "$PUSHED" | json '"\n".join("record %s: %s %s" % (o["record_id"], o["status"], [f["code"] for f in o["flags"]]) for o in d["outcomes"])'

echo "== The dispatcher sees the report arrive"
RECORDS=$(api GET "/records?visit_id=$VISIT" -H "Authorization: Bearer $DISPATCHER_TOKEN")
printf '%s' "$RECORDS" | json '"\n".join("%s %s from %s: %s" % (r["kind"], r["body"]["outcome"], r["device_id"], r["status"]) for r in d["items"])'

echo "== The privacy officer reads the exposure ledger for that borrower: who saw which fields"
LEDGER=$(api GET "/audit/borrowers/$BORROWER/disclosures" -H "Authorization: Bearer $PO_TOKEN")
printf '%s' "$LEDGER" | json '"\n".join("%s %s (%s) via %s, for %s: %s" % (e["occurred_at"], e["username"], e["role"], e["endpoint"], e["purpose"], ", ".join(e["fields"])) for e in d["items"])'

echo "== ... and checks that the ledger's hash chain is intact"
CHAIN=$(api GET /audit/verify -H "Authorization: Bearer $PO_TOKEN")
printf '%s' "$CHAIN" | json '"intact: %s (%d entries checked)" % (d["intact"], d["entries_checked"])'
