"""A clock a test moves by hand: time passes when the test says, and only then."""


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def elapse(self, seconds: float) -> None:
        self.now += seconds
