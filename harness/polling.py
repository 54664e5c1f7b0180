import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(check: Callable[[], T], timeout: float = 60, interval: float = 0.5) -> T:
    """Call ``check()`` until it returns something truthy; that value, or the last one at timeout."""
    deadline = time.time() + timeout
    while True:
        result = check()
        if result or time.time() > deadline:
            return result
        time.sleep(interval)
