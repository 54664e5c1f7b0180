"""Figures a test measured (requests sent, latencies, durations): printed with the test's output
and kept in test-artifacts/<report>.json, for the README's tables. Never asserted on: they move
with the machine."""

from __future__ import annotations

import json

from harness.paths import REPO_ROOT

ARTIFACTS = REPO_ROOT / "test-artifacts"


def record(report: str, name: str, figures: dict) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{report}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[name] = figures
    path.write_text(json.dumps(data, indent=2))
    print(f"\n{name}: {json.dumps(figures)}")
