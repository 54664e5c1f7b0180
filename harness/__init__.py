"""Running the project's stacks from Python: what the tests and the benchmark share (paths, free
ports, waiting for a condition, the production compose stack). Importable from the repository's
root (pytest and `python -m bench` both run there)."""
