"""The accounts' scheduled chores (api/jobs.py runs each on the cron line its setting holds)."""

from __future__ import annotations

import logging

from ..jobs import chore
from ..token_store import current_token_store

log = logging.getLogger(__name__)


@chore("PRUNE_TOKENS_SCHEDULE")
def prune_tokens() -> int:
    """Delete the token store's expired entries (the database store keeps them until pruned; Redis
    expires its own, and says 0). What `flask prune-tokens` does by hand."""
    store = current_token_store()
    removed = store.prune()
    log.info("prune-tokens: removed %s expired entries from the %s store", removed, store.kind)
    return removed
