"""Every key the token store holds, by family: the one place their names are spelled.

| family                          | value                     | lives                                        |
| ------------------------------- | ------------------------- | -------------------------------------------- |
| revoked:<jti>                   | why (logout)              | until the token's exp + leeway               |
| family:<id>                     | why (logout, reuse)       | a refresh token's lifetime                   |
| user-version:<user>             | a counter                 | for good (logout-all bumps it)               |
| profile:<user>                  | the cached profile (JSON) | PROFILE_CACHE_SECONDS, or until it changes   |
| spent:<jti>                     | when it was spent         | until the refresh token's exp + leeway       |
| login-failures:<pair>           | a counter                 | LOGIN_FAILURE_WINDOW                         |
| login-lock:<pair>               | when it ends              | the lock                                     |
| login-account-failures:<account>| a counter                 | LOGIN_FAILURE_WINDOW                         |
| login-account-lock:<account>    | when it ends              | LOGIN_ACCOUNT_LOCK_SECONDS                   |
| login-known:<pair>              | "1"                       | LOGIN_KNOWN_ADDRESS_DAYS                     |
| mail-links-address:<address>    | a counter                 | an hour                                      |
| mail-links-account:<account>    | a counter                 | an hour                                      |
| readiness-probe:<process>       | "1", and a counter        | seconds (written and removed by check())     |

<pair>, <account> and <address> are digests of the normalised e-mail and the client address: no
address is stored. The Redis backend puts REDIS_KEY_PREFIX ("auth:") in front of each.
"""

from __future__ import annotations


def revoked(jti: str) -> str:
    return f"revoked:{jti}"


def family(family_id: str) -> str:
    return f"family:{family_id}"


def user_version(user_id: str | int) -> str:
    return f"user-version:{user_id}"


def profile(user_id: str | int) -> str:
    return f"profile:{user_id}"


def spent(jti: str) -> str:
    return f"spent:{jti}"


def login_failures(pair: str) -> str:
    return f"login-failures:{pair}"


def login_lock(pair: str) -> str:
    return f"login-lock:{pair}"


def login_account_failures(account: str) -> str:
    return f"login-account-failures:{account}"


def login_account_lock(account: str) -> str:
    return f"login-account-lock:{account}"


def login_known(pair: str) -> str:
    return f"login-known:{pair}"


def mail_links_address(address: str) -> str:
    return f"mail-links-address:{address}"


def mail_links_account(account: str) -> str:
    return f"mail-links-account:{account}"


def readiness_probe(process: str) -> str:
    return f"readiness-probe:{process}"
