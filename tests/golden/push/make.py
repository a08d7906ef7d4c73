"""Regenerate the golden push corpus on purpose: `python -m tests.golden.push.make`.

Run it only when a change of push behaviour is intended, and say in the commit what changed
and why; tests/system/test_push_golden.py compares every run against the stored file.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from .driver import GOLDEN, golden_lines, write_golden


def main() -> int:
    lines = golden_lines()
    write_golden(lines)
    counts: Counter[str] = Counter()
    for text in lines:
        data = json.loads(text)
        if "outcome" in data:
            counts[f"outcome {data['outcome']['status']}"] += 1
        elif "table" in data:
            counts[f"row {data['table']}"] += 1
        elif "push" in data:
            counts[f"push {data['status']}"] += 1
    print(f"wrote {len(lines)} lines to {GOLDEN} ({GOLDEN.stat().st_size} bytes gzip'd)")
    for name, count in sorted(counts.items()):
        print(f"  {name}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
