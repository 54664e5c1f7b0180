"""What gunicorn's master process loads: the JSON access log, gunicorn's own error answers, and a
stop that drains first.

Kept out of the ``api`` package: a master that imported the app would fork reloaded workers with
the old code still imported."""
