"""Print each test tier's counts from pytest's JUnit XML reports, so a skipped tier shows at a glance.

    python .ci/tiers.py REPORT.xml [LABEL=REPORT.xml ...]

A tier is the folder under tests/ a test case comes from (unit, integration, e2e...). A report given as
LABEL=PATH prefixes its tiers with LABEL. Missing reports are named, not fatal: this runs after a failed
make test too. Standard library only: it runs before (or without) any virtual environment.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

COLUMNS = ("passed", "skipped", "failed", "errors")


def tier_counts(report: Path) -> dict[str, dict[str, float]]:
    """{tier: {passed, skipped, failed, errors, seconds}} of one JUnit XML report."""
    counts: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys((*COLUMNS, "seconds"), 0.0))
    for case in ET.parse(report).getroot().iter("testcase"):
        parts = (case.get("classname") or "").split(".")
        tier = parts[1] if len(parts) > 1 and parts[0] == "tests" else "other"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "errors", "skipped": "skipped"}[child.tag]
                break
        counts[tier][outcome] += 1
        counts[tier]["seconds"] += float(case.get("time") or 0)
    return counts


def main(argv: list[str]) -> int:
    rows = []
    for spec in argv:
        label, _, path = spec.rpartition("=")
        report = Path(path)
        if not report.is_file():
            rows.append((f"{label + ' ' if label else ''}(no report: {report})", None))
            continue
        try:
            counts = tier_counts(report)
        except ET.ParseError as exc:
            rows.append((f"{label + ' ' if label else ''}(unreadable report {report}: {exc})", None))
            continue
        order = ["unit", "integration", "e2e"]
        for tier in sorted(counts, key=lambda t: (order.index(t) if t in order else len(order), t)):
            rows.append((f"{label + ' ' if label else ''}{tier}", counts[tier]))
    width = max([len(name) for name, _ in rows] + [4])
    print(f"\n{'tier'.ljust(width)}  " + "  ".join(c.rjust(7) for c in COLUMNS) + "  seconds")
    for name, counts in rows:
        if counts is None:
            print(name)
            continue
        cells = "  ".join(str(int(counts[c])).rjust(7) for c in COLUMNS)
        print(f"{name.ljust(width)}  {cells}  {counts['seconds']:7.1f}")
    total = {c: sum(int(counts[c]) for _, counts in rows if counts is not None) for c in COLUMNS}
    print(f"total: {total['passed']} passed, {total['failed'] + total['errors']} failed, {total['skipped']} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
