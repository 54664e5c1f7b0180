import time


def until(check, timeout: float = 60, interval: float = 0.5):
    """Call ``check()`` until it returns something truthy; that value, or the last one at timeout."""
    deadline = time.time() + timeout
    while True:
        result = check()
        if result or time.time() > deadline:
            return result
        time.sleep(interval)
