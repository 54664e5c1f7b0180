"""What `make test` cost, as docs/testing.md shows it (`python tests/timings.py --markdown`): each
tier's wall time, and the modules that cost the most, each summed over its tests."""

from timings import markdown

RESULT = {
    "tiers": {"unit": 40.04, "system": 1234.5},
    "wall": 1300.0,
    "tests": {
        "tests/system/test_a.py::test_one": 100.0,
        "tests/system/test_b.py::test_one": 150.0,
        "tests/system/test_a.py::test_two[dev]": 60.4,
        "tests/unit/test_c.py::test_one": 1.0,
    },
}


def test_the_tables_sum_each_modules_tests_and_rank_them():
    lines = markdown(RESULT, modules=3).splitlines()
    assert "| system | 1,234.5 |" in lines and "| unit | 40.0 |" in lines
    assert "| `tests/system/test_a.py` | 160 | `tests/system/test_b.py` | 150 |" in lines
    # An odd count: the last module is not dropped.
    assert lines[-1] == "| `tests/unit/test_c.py` | 1 | | |"
