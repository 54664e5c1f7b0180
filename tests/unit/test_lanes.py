"""`make test` runs every test module once (tests/lanes.py): each lies in exactly one lane's run,
and `make check` runs the unit and integration tiers whole. Both run lint."""

from pathlib import Path

import pytest

from harness.paths import REPO_ROOT
from lanes import CHECK, TEST


def runs_lint(phases: list) -> bool:
    return any(argv[:2] == ["make", "lint"] for phase in phases for lane in phase.values() for argv in lane)


def modules_run_by(argv: list[str]) -> set[Path]:
    if argv[0] != "pytest":
        return set()
    paths = [REPO_ROOT / arg for arg in argv[1:] if not arg.startswith("-")]
    ignored = {REPO_ROOT / arg.removeprefix("--ignore=") for arg in argv if arg.startswith("--ignore=")}
    found = {module for path in paths for module in ([path] if path.is_file() else path.rglob("test_*.py"))}
    return found - ignored


@pytest.mark.parametrize("lanes", sorted(TEST))
def test_every_test_module_runs_once_whatever_the_lanes(lanes):
    runs = [modules_run_by(argv) for phase in TEST[lanes] for lane in phase.values() for argv in lane]
    every = set((REPO_ROOT / "tests").rglob("test_*.py"))
    assert set().union(*runs) == every
    assert sum(len(run) for run in runs) == len(every), "a module runs twice"
    assert runs_lint(TEST[lanes])


def test_make_check_runs_the_unit_and_integration_tiers_and_lint():
    runs = [argv for phase in CHECK for lane in phase.values() for argv in lane]
    assert set().union(*(modules_run_by(argv) for argv in runs)) == {
        *(REPO_ROOT / "tests/unit").rglob("test_*.py"),
        *(REPO_ROOT / "tests/integration").rglob("test_*.py"),
    }
    assert runs_lint(CHECK)
