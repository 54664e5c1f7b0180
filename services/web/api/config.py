"""Settings: the one place where the environment becomes configuration (``runtime.environment``
merges the real environment over ``.env.d/.env.<mode>``; this module turns the result into typed
settings)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, overload
from urllib.parse import quote, urlsplit

from croniter import croniter

from runtime.cpus import available_cpus, default_hash_concurrency
from runtime.environment import ConfigError, load_environment, resolve_mode

__all__ = ["CONFIG_CLASSES", "Config", "ConfigError", "load_config", "resolve_mode"]

MIN_SECRET_BYTES = 32
# Markers of the placeholder values shipped in .env.d/ and of well-known defaults.
EXAMPLE_SECRET_MARKERS = ("change-me", "changeme", "insecure", "example", "placeholder")
WELL_KNOWN_SECRETS = {"secret", "password", "postgres", "redis", "admin", "root", "mysql", "mariadb"}
# libpq's sslmode values, weakest first: only verify-full checks that the certificate is the host's.
PGSSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# A URL's scheme as platforms write it -> the driver we install (a URL without one would get
# SQLAlchemy's default driver: psycopg 3 since 2.1, mysqlclient; we install psycopg2 and PyMySQL).
DRIVERLESS_SCHEMES = {
    "postgres": "postgresql+psycopg2",  # Heroku-style: SQLAlchemy 2 no longer takes it at all
    "postgresql": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}

# Longer than any request keeps a transaction open while it waits on something else (a hashing slot,
# the token store): the server ends a session idle in a transaction this long (its client is gone).
IDLE_IN_TRANSACTION_SECONDS = 30

log = logging.getLogger(__name__)


class EnvReader:
    """Reads typed values out of a string mapping, naming the variable in every error. (An empty
    value counts as unset: `FOO=` in an env file leaves the default.)"""

    def __init__(self, values: Mapping[str, str]):
        self.values = values

    @overload
    def text(self, name: str) -> str | None: ...
    @overload
    def text(self, name: str, default: str) -> str: ...
    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        return default if value is None or value == "" else value

    def integer(self, name: str, default: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number") from None

    def number(self, name: str, default: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number") from None

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name}={raw!r} is not a boolean (use true or false)")

    def secret(self, name: str) -> str | None:
        """A secret from the file ``NAME_FILE`` names (Docker and Swarm secrets: nothing secret in
        the environment, which `docker inspect` shows), or else from ``NAME`` itself."""
        path = self.text(f"{name}_FILE")
        if path is None:
            return self.text(name)
        try:
            with open(path, encoding="utf-8") as file:
                return file.read().rstrip("\r\n") or None
        except OSError as error:
            raise ConfigError(f"{name}_FILE={path!r} cannot be read: {error.strerror}") from None

    def items(self, name: str) -> list[str]:
        """A comma-separated list."""
        return [item.strip() for item in self.text(name, "").split(",") if item.strip()]


def database_url(settings: EnvReader) -> str | None:
    url = settings.text("DATABASE_URL")
    if url:
        scheme, separator, rest = url.partition("://")
        return f"{DRIVERLESS_SCHEMES[scheme]}://{rest}" if separator and scheme in DRIVERLESS_SCHEMES else url
    host = settings.text("POSTGRES_HOST")
    if not host:
        return None
    user = quote(settings.text("POSTGRES_USER", "postgres"), safe="")
    password = settings.secret("POSTGRES_PASSWORD")
    credentials = f"{user}:{quote(password, safe='')}" if password else user
    port = settings.integer("POSTGRES_PORT", 5432)
    name = settings.text("POSTGRES_DB") or settings.text("POSTGRES_NAME") or "postgres"
    return f"postgresql+psycopg2://{credentials}@{host}:{port}/{quote(name, safe='')}"


def dead_peer_probes(dead_peer_seconds: float) -> dict[str, int]:
    """How a connection notices a peer that stopped answering within ``dead_peer_seconds``: TCP
    keepalives once it has been idle a second (waiting for an answer is idle too), every second,
    and the connection ended once its data or probes go unacknowledged that long. In libpq's
    names; the server's side, and PyMySQL's socket (api/database.py), take the same values."""
    return {
        "keepalives_idle": 1,
        "keepalives_interval": 1,
        "keepalives_count": max(1, round(dead_peer_seconds)),
        "tcp_user_timeout": round(dead_peer_seconds * 1000),
    }


def server_connect_args(
    url: str,
    connect_timeout: int,
    statement_timeout: float,
    lock_timeout: float,
    dead_peer_seconds: float,
    postgres_tls: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The driver's connection arguments for a database server: how long a connect, a statement
    and a lock wait may take, and how soon a peer that stopped answering is given up on.

    Postgres (libpq) takes all of it at connect time: the session's bounds as ``options``, TCP
    keepalives probing an idle connection every second, and ``tcp_user_timeout`` ending one whose
    data or probes go unacknowledged that long. PyMySQL has no keepalive settings: the same are set
    on its socket as each connection opens (api/database.py), with read and write timeouts as a
    backstop (a statement may take its full bound first); so are the session's bounds (their
    variables' names differ between MariaDB and MySQL). ``postgres_tls``: libpq's sslmode and
    sslrootcert."""
    if url.startswith("postgres"):
        probes = dead_peer_probes(dead_peer_seconds)
        bounds = " ".join(
            [
                f"-c statement_timeout={round(statement_timeout * 1000)}",
                f"-c lock_timeout={round(lock_timeout * 1000)}",
                # The server's side of the same: a session whose client vanished mid-transaction (a
                # partition drops the answer to its last query) would otherwise keep its locks for
                # hours, and a migration's ACCESS EXCLUSIVE queued behind them stalls every request.
                f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_SECONDS * 1000}",
                *(
                    [
                        f"-c tcp_keepalives_idle={probes['keepalives_idle']}",
                        f"-c tcp_keepalives_interval={probes['keepalives_interval']}",
                        f"-c tcp_keepalives_count={probes['keepalives_count']}",
                        f"-c tcp_user_timeout={probes['tcp_user_timeout']}",
                    ]
                    if dead_peer_seconds
                    else []
                ),
            ]
        )
        return {
            **(postgres_tls or {}),
            "connect_timeout": connect_timeout,
            "options": bounds,
            "keepalives": 1,
            **probes,
        }
    if url.startswith(("mysql", "mariadb")):
        wait = statement_timeout + dead_peer_seconds if statement_timeout else None
        return {"connect_timeout": connect_timeout, "read_timeout": wait, "write_timeout": wait}
    return {"connect_timeout": connect_timeout}


def redis_url(settings: EnvReader) -> str | None:
    url = settings.text("REDIS_URL")
    if url:
        return url
    host = settings.text("REDIS_HOST")
    if not host:
        return None
    password = settings.secret("REDIS_PASSWORD")
    # An ACL user (production: `app`, allowed only the commands the app runs), or Redis's default user.
    username = quote(settings.text("REDIS_USERNAME", ""), safe="")
    credentials = f"{username}:{quote(password, safe='')}@" if password else ""
    port = settings.integer("REDIS_PORT", 6379)
    index = settings.integer("REDIS_DB_INDEX", 0)
    scheme = "rediss" if settings.flag("REDIS_TLS", False) else "redis"
    return f"{scheme}://{credentials}{host}:{port}/{index}"


def jobs_redis_url(settings: EnvReader) -> str | None:
    """The job queue's Redis (api/jobs.py): JOBS_REDIS_URL, or REDIS_HOST's server with a user,
    password and database of the queue's own (JOBS_REDIS_DB: set it to turn the queue on). None: no
    queue, each job runs where it is asked for."""
    url = settings.text("JOBS_REDIS_URL")
    if url:
        return url
    host = settings.text("REDIS_HOST")
    index = settings.text("JOBS_REDIS_DB")
    if not (host and index):
        return None
    password = settings.secret("JOBS_REDIS_PASSWORD")
    username = quote(settings.text("JOBS_REDIS_USERNAME", ""), safe="")
    credentials = f"{username}:{quote(password, safe='')}@" if password else ""
    port = settings.integer("REDIS_PORT", 6379)
    scheme = "rediss" if settings.flag("REDIS_TLS", False) else "redis"
    return f"{scheme}://{credentials}{host}:{port}/{settings.integer('JOBS_REDIS_DB', 1)}"


def schedule(settings: EnvReader, name: str, default: str) -> str | None:
    """A chore's cron line; None for "off" (the chore never runs)."""
    line = settings.text(name, default)
    return None if line.strip().lower() == "off" else line


def secret_problem(value: str | None) -> str | None:
    """Why a secret is unfit for production, or None when it is fit."""
    if not value:
        return "is missing"
    if len(value.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    lowered = value.lower()
    if lowered in WELL_KNOWN_SECRETS or any(marker in lowered for marker in EXAMPLE_SECRET_MARKERS):
        return "is an example value"
    return None


class Config:
    """Settings shared by every mode. Subclasses change defaults, never the names."""

    MODE = "base"
    DEBUG = False
    TESTING = False
    DEFAULT_ARGON2 = {"time_cost": 3, "memory_cost": 65536, "parallelism": 1}

    def __init__(self, values: Mapping[str, str]):
        s = EnvReader(values)
        self.APP_VERSION = s.text("APP_VERSION") or _package_version()
        self.APP_REVISION = s.text("APP_REVISION") or _release_revision()
        self.SECRET_KEY = s.secret("FLASK_SECRET_KEY")
        self.JWT_SECRET_KEY = s.secret("JWT_SECRET_KEY")

        self.SQLALCHEMY_DATABASE_URI = database_url(s) or self.default_database_url()
        # Every statement has an upper bound, and so has every wait for a lock; a peer that stopped
        # answering (a partition, a frozen host) is given up on within DB_DEAD_PEER_SECONDS.
        # `flask deploy` (migrations) gets bounds of its own. Seconds; 0 is no bound.
        self.DB_STATEMENT_TIMEOUT = s.number("DB_STATEMENT_TIMEOUT", 5)
        self.DB_LOCK_TIMEOUT = s.number("DB_LOCK_TIMEOUT", 1)
        self.DB_DEAD_PEER_SECONDS = s.number("DB_DEAD_PEER_SECONDS", 2)
        self.DB_MIGRATION_STATEMENT_TIMEOUT = s.number("DB_MIGRATION_STATEMENT_TIMEOUT", 600)
        self.DB_MIGRATION_LOCK_TIMEOUT = s.number("DB_MIGRATION_LOCK_TIMEOUT", 10)
        # TLS to a Postgres elsewhere (a managed service), in libpq's own names, which pg_dump (the
        # backup service) reads too: how strictly to verify the server, and the CA that signed its
        # certificate ("system": the image's trusted CAs). Or in DATABASE_URL: ?sslmode=...
        self.PGSSLMODE = s.text("PGSSLMODE")
        self.PGSSLROOTCERT = s.text("PGSSLROOTCERT")
        # No statement's parameters in an error's text (a password hash, an address): they reach the log.
        self.SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
        if not self.SQLALCHEMY_DATABASE_URI.startswith("sqlite"):  # a server: Postgres, MariaDB, MySQL
            self.SQLALCHEMY_ENGINE_OPTIONS.update(
                pool_size=s.integer("DB_POOL_SIZE", 5),
                max_overflow=s.integer("DB_MAX_OVERFLOW", 5),
                pool_timeout=s.integer("DB_POOL_TIMEOUT", 5),
                connect_args=server_connect_args(
                    self.SQLALCHEMY_DATABASE_URI,
                    connect_timeout=s.integer("DB_CONNECT_TIMEOUT", 2),
                    statement_timeout=self.DB_STATEMENT_TIMEOUT,
                    lock_timeout=self.DB_LOCK_TIMEOUT,
                    dead_peer_seconds=self.DB_DEAD_PEER_SECONDS,
                    postgres_tls={
                        name: value
                        for name, value in (("sslmode", self.PGSSLMODE), ("sslrootcert", self.PGSSLROOTCERT))
                        if value
                    },
                ),
            )
        self.REDIS_URL = redis_url(s)
        self.REDIS_KEY_PREFIX = s.text("REDIS_KEY_PREFIX", "auth:")
        self.REDIS_SOCKET_TIMEOUT = s.number("REDIS_SOCKET_TIMEOUT", 1.0)
        # TLS to Redis: a rediss:// URL (or REDIS_TLS with REDIS_HOST); the server's certificate is
        # always verified, name included, against the image's trusted CAs or this one.
        self.REDIS_CA_FILE = s.text("REDIS_CA_FILE")
        # Circuit breakers on the token store and the database: after this many failures in a row,
        # answer 503 at once, and let one probe through every BREAKER_RESET_SECONDS.
        self.BREAKER_FAILURES = s.integer("BREAKER_FAILURES", 3)
        self.BREAKER_RESET_SECONDS = s.number("BREAKER_RESET_SECONDS", 0.5)
        self.BLACKLIST_STORAGE_TYPE = (s.text("BLACKLIST_STORAGE_TYPE") or "redis").lower()

        self.JWT_ACCESS_TOKEN_EXPIRES = s.integer("JWT_ACCESS_TOKEN_EXPIRES", 15 * 60)
        self.JWT_REFRESH_TOKEN_EXPIRES = s.integer("JWT_REFRESH_TOKEN_EXPIRES", 30 * 24 * 3600)
        self.JWT_DECODE_LEEWAY = s.integer("JWT_DECODE_LEEWAY", 15)
        self.JWT_ALGORITHM = "HS256"
        self.JWT_DECODE_ALGORITHMS = ["HS256"]
        self.JWT_REFRESH_REUSE_GRACE_SECONDS = s.integer("JWT_REFRESH_REUSE_GRACE_SECONDS", 0)
        # How long a user's profile may be served from the token store (changes made through the
        # app forget it at once; this bounds what changes behind the app's back).
        self.PROFILE_CACHE_SECONDS = s.integer("PROFILE_CACHE_SECONDS", 300)
        # API clients send every token in Authorization. A browser may instead keep its refresh
        # token in an HttpOnly cookie that only /api/auth/refresh receives, with a double-submit CSRF
        # token (a readable cookie echoed in X-CSRF-TOKEN); access tokens never come from cookies.
        self.JWT_TOKEN_LOCATION = ["headers", "cookies"]
        self.JWT_COOKIE_SECURE = s.flag("JWT_COOKIE_SECURE", True)
        self.JWT_COOKIE_SAMESITE = "Strict"
        self.JWT_REFRESH_COOKIE_PATH = "/api/auth/refresh"
        self.JWT_REFRESH_CSRF_COOKIE_PATH = "/"
        self.JWT_COOKIE_CSRF_PROTECT = True
        self.JWT_CSRF_IN_COOKIES = True
        self.JWT_SESSION_COOKIE = False

        self.ARGON2_TIME_COST = s.integer("ARGON2_TIME_COST", self.DEFAULT_ARGON2["time_cost"])
        self.ARGON2_MEMORY_COST = s.integer("ARGON2_MEMORY_COST", self.DEFAULT_ARGON2["memory_cost"])
        self.ARGON2_PARALLELISM = s.integer("ARGON2_PARALLELISM", self.DEFAULT_ARGON2["parallelism"])
        # Hashes at once per container, and how long a login waits for a turn before a 503.
        # A login that finds every slot taken waits this long at most, then gets a quick 503 with
        # Retry-After: a flood of logins must not make everyone wait (it cannot take more CPU anyway).
        self.PASSWORD_HASH_CONCURRENCY = s.integer(
            "PASSWORD_HASH_CONCURRENCY", default_hash_concurrency(available_cpus())
        )
        self.PASSWORD_HASH_WAIT_SECONDS = s.number("PASSWORD_HASH_WAIT_SECONDS", 2)

        self.LOGIN_FAILURES_BEFORE_LOCK = s.integer("LOGIN_FAILURES_BEFORE_LOCK", 5)
        self.LOGIN_FAILURE_WINDOW = s.integer("LOGIN_FAILURE_WINDOW", 15 * 60)
        self.LOGIN_LOCK_BASE_SECONDS = s.integer("LOGIN_LOCK_BASE_SECONDS", 30)
        self.LOGIN_LOCK_MAX_SECONDS = s.integer("LOGIN_LOCK_MAX_SECONDS", 15 * 60)
        self.LOGIN_ACCOUNT_FAILURES_BEFORE_LOCK = s.integer("LOGIN_ACCOUNT_FAILURES_BEFORE_LOCK", 20)
        self.LOGIN_ACCOUNT_LOCK_SECONDS = s.integer("LOGIN_ACCOUNT_LOCK_SECONDS", 60)
        self.LOGIN_KNOWN_ADDRESS_DAYS = s.integer("LOGIN_KNOWN_ADDRESS_DAYS", 30)

        self.MAX_CONTENT_LENGTH = s.integer("MAX_CONTENT_LENGTH", 1024 * 1024)
        self.TRUSTED_PROXY_HOPS = s.integer("TRUSTED_PROXY_HOPS", 0)
        self.SPA_STATIC_DIR = s.text("FLASK_STATIC_DIR")
        self.SPA_TEMPLATE_DIR = s.text("FLASK_TEMPLATE_DIR") or self.SPA_STATIC_DIR

        self.LOG_LEVEL = s.text("LOG_LEVEL", "INFO").upper()
        self.LOG_FORMAT = s.text("LOG_FORMAT", self.default_log_format())
        self.LOG_TO_SYSLOG = s.flag("LOG_TO_SYSLOG", False)
        self.SYSLOG_ADDRESS = s.text("SYSLOG_ADDRESS", "/dev/log")

        self.MAIL_SERVER = s.text("MAIL_SERVER")
        self.MAIL_PORT = s.integer("MAIL_PORT", 25)
        self.MAIL_USE_TLS = s.flag("MAIL_USE_TLS", False)
        self.MAIL_USERNAME = s.text("MAIL_USERNAME")
        self.MAIL_PASSWORD = s.secret("MAIL_PASSWORD")
        self.MAIL_SENDER = s.text("MAIL_SENDER", "flask-stack@localhost")
        self.MAIL_SUBJECT_PREFIX = s.text("MAIL_SUBJECT_PREFIX", "[flask-stack]")
        self.ADMINS = s.items("ADMINS")
        # Where the SPA is, for links in mails (never the request's Host header, which a client sets).
        self.PUBLIC_URL = s.text("PUBLIC_URL", self.default_public_url()).rstrip("/")
        self.PASSWORD_RESET_SECONDS = s.integer("PASSWORD_RESET_SECONDS", 1800)
        self.EMAIL_VERIFY_SECONDS = s.integer("EMAIL_VERIFY_SECONDS", 7 * 86400)
        # Sign-in refuses accounts whose address is not verified (email_not_verified).
        self.REQUIRE_VERIFIED_EMAIL = s.flag("REQUIRE_VERIFIED_EMAIL", False)
        # Mails a link may be asked for, per account and per client address, each hour.
        self.MAIL_LINKS_PER_ACCOUNT = s.integer("MAIL_LINKS_PER_ACCOUNT", 5)
        self.MAIL_LINKS_PER_ADDRESS = s.integer("MAIL_LINKS_PER_ADDRESS", 20)
        # One e-mail per kind of error per this many seconds (the next one says how many were held back).
        self.MAIL_ERROR_INTERVAL = s.number("MAIL_ERROR_INTERVAL", 300)

        self.GUNICORN_WORKERS = s.integer("GUNICORN_WORKERS", 1)

        # Background jobs (api/jobs.py, docs/jobs.md). No queue: each job runs where it is asked for.
        self.JOBS_REDIS_URL = jobs_redis_url(s)
        # Jobs run at once by each worker; 0: one per CPU the container may use (as gunicorn's workers).
        self.JOBS_CONCURRENCY = s.integer("JOBS_CONCURRENCY", 0) or max(1, round(available_cpus()))
        # A job a worker took and never finished (the worker was killed) is handed out again after
        # this long; no job may be put off (a mail's retry) for longer.
        self.JOBS_VISIBILITY_TIMEOUT = s.integer("JOBS_VISIBILITY_TIMEOUT", 600)
        # A mail the server did not take is tried again after 1, 2, 4... seconds, at most this far
        # apart, for this long; then it is given up on (a dead letter: `flask jobs`, the log).
        self.MAIL_RETRY_MAX_DELAY = s.integer("MAIL_RETRY_MAX_DELAY", 300)
        self.MAIL_RETRY_SECONDS = s.integer("MAIL_RETRY_SECONDS", 2 * 3600)
        # Chores, each a cron line (minute hour day month weekday [second], or @daily...); off: never.
        self.PRUNE_TOKENS_SCHEDULE = schedule(s, "PRUNE_TOKENS_SCHEDULE", "17 3 * * *")

        # Optional error reporting and tracing, off unless set (api/telemetry.py).
        self.SENTRY_DSN = s.secret("SENTRY_DSN")
        self.SENTRY_TRACES_SAMPLE_RATE = s.number("SENTRY_TRACES_SAMPLE_RATE", 0)
        self.OTEL_EXPORTER_OTLP_ENDPOINT = s.text("OTEL_EXPORTER_OTLP_ENDPOINT")
        self.OTEL_SERVICE_NAME = s.text("OTEL_SERVICE_NAME", "flask-stack-web")

        # flask-smorest: the spec lives under /api; the docs page is our own (local assets, no inline script).
        self.API_TITLE = "flask-stack API"
        self.API_VERSION = self.APP_VERSION
        self.OPENAPI_VERSION = "3.0.3"
        self.OPENAPI_URL_PREFIX = "/api"
        self.OPENAPI_JSON_PATH = "openapi.json"
        self.validate()

    def default_database_url(self) -> str:
        raise ConfigError("Set DATABASE_URL or POSTGRES_HOST (with POSTGRES_USER/PASSWORD/DB)")

    def default_log_format(self) -> str:
        return "text"

    def default_public_url(self) -> str:
        """The development stack's edge; production must say (links in mails are not sent without)."""
        return "https://localhost:8443"

    def validate(self) -> None:
        if self.BLACKLIST_STORAGE_TYPE not in {"redis", "database", "memory"}:
            raise ConfigError(f"BLACKLIST_STORAGE_TYPE={self.BLACKLIST_STORAGE_TYPE!r}: use redis, database or memory")
        if self.BLACKLIST_STORAGE_TYPE == "redis" and not self.REDIS_URL:
            raise ConfigError("BLACKLIST_STORAGE_TYPE=redis needs REDIS_URL or REDIS_HOST")
        self.validate_tls()
        for name, line in vars(self).items():
            if name.endswith("_SCHEDULE") and line and not croniter.is_valid(line):
                raise ConfigError(f"{name}={line!r} is not a cron line (minute hour day month weekday, or @daily...)")
        if self.MAIL_RETRY_MAX_DELAY >= self.JOBS_VISIBILITY_TIMEOUT:
            raise ConfigError(
                f"MAIL_RETRY_MAX_DELAY={self.MAIL_RETRY_MAX_DELAY} must be below JOBS_VISIBILITY_TIMEOUT"
                f"={self.JOBS_VISIBILITY_TIMEOUT}: a job put off longer would be handed out twice"
            )
        if self.LOG_FORMAT not in {"text", "json"}:
            raise ConfigError(f"LOG_FORMAT={self.LOG_FORMAT!r}: use text or json")
        for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
            if not getattr(self, name):
                env_name = "FLASK_SECRET_KEY" if name == "SECRET_KEY" else name
                raise ConfigError(f"{env_name} is missing")

    def validate_tls(self) -> None:
        """Settings for TLS that would quietly mean less than they say fail here, at start."""
        if self.PGSSLMODE or self.PGSSLROOTCERT:
            if not self.SQLALCHEMY_DATABASE_URI.startswith("postgres"):
                raise ConfigError("PGSSLMODE and PGSSLROOTCERT are for Postgres: the database here is another")
            if self.PGSSLMODE and self.PGSSLMODE not in PGSSLMODES:
                raise ConfigError(f"PGSSLMODE={self.PGSSLMODE!r}: use one of {', '.join(PGSSLMODES)}")
            if self.PGSSLMODE in {"verify-ca", "verify-full"} and not self.PGSSLROOTCERT:
                raise ConfigError(
                    f"PGSSLMODE={self.PGSSLMODE} needs PGSSLROOTCERT: the CA that signed the server's certificate"
                )
        for name, path in (("PGSSLROOTCERT", self.PGSSLROOTCERT), ("REDIS_CA_FILE", self.REDIS_CA_FILE)):
            if path and not (name == "PGSSLROOTCERT" and path == "system") and not Path(path).is_file():
                raise ConfigError(f"{name}={path}: no such file")
        if self.REDIS_CA_FILE and not (self.REDIS_URL or "").startswith("rediss://"):
            raise ConfigError("REDIS_CA_FILE is for TLS: use a rediss:// REDIS_URL, or REDIS_TLS=true")


class DevelopmentConfig(Config):
    MODE = "development"
    DEBUG = True


class TestConfig(Config):
    MODE = "test"
    TESTING = True
    # Fast hashes in tests; the production parameters are exercised by their own test.
    DEFAULT_ARGON2 = {"time_cost": 1, "memory_cost": 8192, "parallelism": 1}

    def default_database_url(self) -> str:
        return "sqlite://"


class ProductionConfig(Config):
    MODE = "production"

    def default_log_format(self) -> str:
        return "json"

    def default_public_url(self) -> str:
        return ""

    def validate(self) -> None:
        problems = []
        for env_name, value in self.production_secrets():
            problem = secret_problem(value)
            if problem:
                problems.append(f"{env_name} {problem}")
        if problems:
            raise ConfigError(
                "Production refuses to start: "
                + "; ".join(problems)
                + ". Run `make secrets` to generate .env.d/.env.production."
            )
        super().validate()

    def production_secrets(self) -> list[tuple[str, str | None]]:
        secrets = [("FLASK_SECRET_KEY", self.SECRET_KEY), ("JWT_SECRET_KEY", self.JWT_SECRET_KEY)]
        db = urlsplit(self.SQLALCHEMY_DATABASE_URI)
        if db.scheme.startswith("postgres"):
            secrets.append(("POSTGRES_PASSWORD", db.password))
        elif db.scheme.startswith(("mysql", "mariadb")):
            secrets.append(("DATABASE_URL's password", db.password))
        if self.BLACKLIST_STORAGE_TYPE == "redis" and self.REDIS_URL:
            secrets.append(("REDIS_PASSWORD", urlsplit(self.REDIS_URL).password))
        if self.JOBS_REDIS_URL:
            secrets.append(("JOBS_REDIS_PASSWORD", urlsplit(self.JOBS_REDIS_URL).password))
        return secrets


CONFIG_CLASSES: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "test": TestConfig,
    "production": ProductionConfig,
}


def load_config(overrides: Mapping[str, str] | None = None) -> Config:
    """Build the config object for the mode named by the environment (``overrides`` on top)."""
    environ = {**os.environ, **(overrides or {})}
    mode, values = load_environment(environ)
    return CONFIG_CLASSES[mode](values)


# Written by the hook's host deploys (deploy/systemd) into each release: there every release runs
# under the same unit, so the environment cannot say which commit a worker loaded.
REVISION_FILE = Path(__file__).resolve().parent.parent / "REVISION"


def _release_revision() -> str:
    try:
        return REVISION_FILE.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def _package_version() -> str:
    from . import __version__

    return __version__
