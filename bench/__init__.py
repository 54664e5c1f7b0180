"""`make bench`: the production stack measured; see __main__.py."""
