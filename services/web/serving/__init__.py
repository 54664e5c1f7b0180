"""What gunicorn's master process loads: the JSON access log and gunicorn's own error answers.

Kept out of the ``api`` package: a master that imported the app would fork reloaded workers with
the old code still imported."""
