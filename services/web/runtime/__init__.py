"""What a process learns about where it runs: its environment (the real one over `.env.d/`) and the
CPUs it may use. Outside the ``api`` package, so gunicorn's master can read it without importing
the app (reloaded workers must import the app afresh)."""
