# The compose stack fixtures (compose_ready, compose_files, stack) for the tiers that use them.
pytest_plugins = ["compose_stack"]
