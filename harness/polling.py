import time
from collections.abc import Callable
from typing import TypeVar

import requests

T = TypeVar("T")


def until(check: Callable[[], T], timeout: float = 60, interval: float = 0.5) -> T:
    """Call ``check()`` until it returns something truthy; that value, or the last one at timeout."""
    deadline = time.time() + timeout
    while True:
        result = check()
        if result or time.time() > deadline:
            return result
        time.sleep(interval)


def answers(url: str, verify: str | bool = True, timeout: float = 5) -> bool:
    """A GET of ``url`` is answered 200; no answer (refused, reset, timed out) is False, for `until`."""
    try:
        return requests.get(url, verify=verify, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False
