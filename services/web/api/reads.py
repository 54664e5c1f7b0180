"""Read-only views run their queries outside a transaction."""

from functools import wraps

from .extensions import db


def read_only(view):
    """The view only reads, so its queries need no transaction: on an autocommit connection each
    query is one round trip, without the BEGIN before it and the ROLLBACK when the request ends."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        return view(*args, **kwargs)

    return wrapper
