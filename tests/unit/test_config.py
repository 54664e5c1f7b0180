"""Mode selection, env files, URL building, and production's refusal of weak or example secrets."""

import pytest

from api import create_app
from api.config import ConfigError, load_config, resolve_mode
from harness.paths import ENV_DIR

STRONG = "k7Qx2vN9pL4mR8sT1wY6zB3cF5hJ0dGa"  # 32 random-looking bytes
STRONG_2 = "Vb8nM2xZ5qW7eR1tY4uI9oP3aS6dF0gH"


def production(**overrides):
    settings = {
        "APP_ENV": "production",
        "FLASK_SECRET_KEY": STRONG,
        "JWT_SECRET_KEY": STRONG_2,
        "POSTGRES_HOST": "db",
        "POSTGRES_PASSWORD": STRONG + "pg",
        "BLACKLIST_STORAGE_TYPE": "redis",
        "REDIS_HOST": "redis",
        "REDIS_PASSWORD": STRONG + "redis",
    }
    settings.update(overrides)
    return load_config(settings)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """Config reads the real environment: clear what this machine might set, use an empty env dir."""
    for name in (
        "APP_ENV",
        "FLASK_ENV",
        "DATABASE_URL",
        "REDIS_URL",
        "POSTGRES_HOST",
        "REDIS_HOST",
        "FLASK_SECRET_KEY",
        "JWT_SECRET_KEY",
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "PGSSLMODE",
        "PGSSLROOTCERT",
        "REDIS_TLS",
        "REDIS_CA_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENV_DIR", str(tmp_path))


def test_production_starts_with_strong_secrets():
    config = production()
    assert config.MODE == "production"
    assert config.SQLALCHEMY_DATABASE_URI.startswith("postgresql+psycopg2://postgres:")
    assert config.SQLALCHEMY_DATABASE_URI.endswith("@db:5432/postgres")
    assert config.LOG_FORMAT == "json"


@pytest.mark.parametrize("name", ["FLASK_SECRET_KEY", "JWT_SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"])
def test_production_names_a_missing_secret(name):
    with pytest.raises(ConfigError, match=f"{name} is missing"):
        production(**{name: ""})


def test_production_refuses_a_short_secret():
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY is shorter than 32 bytes"):
        production(JWT_SECRET_KEY="x" * 31)


@pytest.mark.parametrize(
    "value", ["CHANGE-ME" * 4, "insecure-dev-jwt-secret-key-0123456789abcdef", "this-is-an-example-secret-value-ok"]
)
def test_production_refuses_example_values(value):
    with pytest.raises(ConfigError, match="FLASK_SECRET_KEY is an example value"):
        production(FLASK_SECRET_KEY=value)


def test_production_lists_every_problem_at_once():
    with pytest.raises(ConfigError) as raised:
        production(FLASK_SECRET_KEY="", JWT_SECRET_KEY="short")
    assert "FLASK_SECRET_KEY is missing" in str(raised.value)
    assert "JWT_SECRET_KEY is shorter" in str(raised.value)


def test_production_checks_the_password_inside_database_url():
    with pytest.raises(ConfigError, match="POSTGRES_PASSWORD is an example value"):
        production(DATABASE_URL="postgresql://app:CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME@db/app")


@pytest.mark.parametrize("scheme", ["mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql"])
@pytest.mark.parametrize(
    ("password", "problem"), [("", "is missing"), ("root", "is shorter"), ("changeme" * 5, "is an example value")]
)
def test_production_checks_a_mysql_url_s_password(scheme, password, problem):
    with pytest.raises(ConfigError, match=f"DATABASE_URL's password {problem}"):
        production(DATABASE_URL=f"{scheme}://app:{password}@db/app")


def test_production_with_the_committed_dev_env_file_refuses(monkeypatch):
    # A production process handed the committed development values refuses them.
    dev_values = (ENV_DIR / ".env.development").read_text()
    secrets = dict(line.split("=", 1) for line in dev_values.splitlines() if line.startswith(("FLASK_", "JWT_")))
    with pytest.raises(ConfigError, match="example value"):
        production(**secrets)


def test_create_app_refuses_to_start_in_production_without_secrets():
    with pytest.raises(ConfigError, match="FLASK_SECRET_KEY is missing"):
        create_app({"APP_ENV": "production", "FLASK_SECRET_KEY": "", "DATABASE_URL": "sqlite://"})


def test_mode_defaults_to_production():
    assert resolve_mode({}) == "production"


def test_flask_env_is_accepted_and_app_env_wins():
    assert resolve_mode({"FLASK_ENV": "development"}) == "development"
    assert resolve_mode({"FLASK_ENV": "development", "APP_ENV": "testing"}) == "test"


def test_unknown_mode_is_named():
    with pytest.raises(ConfigError, match="'staging' is not a mode"):
        resolve_mode({"APP_ENV": "staging"})


def test_env_file_fills_in_and_the_real_environment_wins(monkeypatch, tmp_path):
    (tmp_path / ".env.test").write_text("JWT_ACCESS_TOKEN_EXPIRES=111\nJWT_REFRESH_TOKEN_EXPIRES=222\n")
    monkeypatch.setenv("JWT_REFRESH_TOKEN_EXPIRES", "333")
    config = load_config(
        {"APP_ENV": "test", "FLASK_SECRET_KEY": STRONG, "JWT_SECRET_KEY": STRONG_2, "BLACKLIST_STORAGE_TYPE": "memory"}
    )
    assert config.JWT_ACCESS_TOKEN_EXPIRES == 111
    assert config.JWT_REFRESH_TOKEN_EXPIRES == 333


def test_postgres_parts_make_a_quoted_url():
    config = production(
        POSTGRES_USER="app", POSTGRES_PASSWORD="p@ss:w/rd" + STRONG, POSTGRES_DB="my db", POSTGRES_PORT="6543"
    )
    assert config.SQLALCHEMY_DATABASE_URI == f"postgresql+psycopg2://app:p%40ss%3Aw%2Frd{STRONG}@db:6543/my%20db"


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg2"])
def test_database_url_wins_and_gets_the_driver_we_install(scheme):
    """A platform's postgres:// (or a driverless postgresql://) URL means psycopg2, which the image
    has: SQLAlchemy's default driver (psycopg 3 since 2.1) is not installed."""
    config = production(DATABASE_URL=f"{scheme}://u:{STRONG}@elsewhere/x")
    assert config.SQLALCHEMY_DATABASE_URI == f"postgresql+psycopg2://u:{STRONG}@elsewhere/x"


@pytest.mark.parametrize(
    ("scheme", "meant"),
    [("mysql", "mysql+pymysql"), ("mysql+pymysql", "mysql+pymysql"), ("mariadb", "mariadb+pymysql")],
)
def test_a_mysql_url_gets_pymysql_and_a_server_s_pool(scheme, meant):
    """A platform's mysql:// URL means PyMySQL (SQLAlchemy's default, mysqlclient, is not installed),
    with the pool and connect timeout a Postgres server gets, and a bound on each wait for it: a
    statement's bound and then the time a dead peer is given."""
    config = production(
        DATABASE_URL=f"{scheme}://u:{STRONG}@elsewhere/x",
        DB_CONNECT_TIMEOUT="4",
        DB_STATEMENT_TIMEOUT="6",
        DB_DEAD_PEER_SECONDS="1.5",
    )
    assert config.SQLALCHEMY_DATABASE_URI == f"{meant}://u:{STRONG}@elsewhere/x"
    assert config.SQLALCHEMY_ENGINE_OPTIONS["connect_args"] == {
        "connect_timeout": 4,
        "read_timeout": 7.5,
        "write_timeout": 7.5,
    }
    assert config.SQLALCHEMY_ENGINE_OPTIONS["hide_parameters"] is True


def test_postgres_bounds_each_statement_and_lock_wait_and_notices_a_dead_peer():
    config = production(POSTGRES_HOST="db", POSTGRES_PASSWORD=STRONG, DB_STATEMENT_TIMEOUT="4.5", DB_LOCK_TIMEOUT="1.5")
    assert config.SQLALCHEMY_ENGINE_OPTIONS["connect_args"] == {
        "connect_timeout": 2,
        "options": "-c statement_timeout=4500 -c lock_timeout=1500 -c idle_in_transaction_session_timeout=30000"
        " -c tcp_keepalives_idle=1 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=2 -c tcp_user_timeout=2000",
        "keepalives": 1,
        "keepalives_idle": 1,
        "keepalives_interval": 1,
        "keepalives_count": 2,
        "tcp_user_timeout": 2000,
    }
    assert config.SQLALCHEMY_ENGINE_OPTIONS["hide_parameters"] is True


def test_a_bound_of_zero_is_no_bound():
    config = production(POSTGRES_HOST="db", POSTGRES_PASSWORD=STRONG, DB_STATEMENT_TIMEOUT="0", DB_LOCK_TIMEOUT="0")
    assert config.SQLALCHEMY_ENGINE_OPTIONS["connect_args"]["options"].startswith(
        "-c statement_timeout=0 -c lock_timeout=0 "
    )
    mysql = production(DATABASE_URL=f"mysql://u:{STRONG}@elsewhere/x", DB_STATEMENT_TIMEOUT="0")
    assert mysql.SQLALCHEMY_ENGINE_OPTIONS["connect_args"]["read_timeout"] is None


def test_redis_parts_make_a_url():
    config = production(REDIS_HOST="cache", REDIS_PORT="6380", REDIS_DB_INDEX="2", REDIS_PASSWORD=STRONG)
    assert config.REDIS_URL == f"redis://:{STRONG}@cache:6380/2"


def test_tls_to_postgres_and_redis_elsewhere_reaches_the_drivers(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("a CA")
    config = production(PGSSLMODE="verify-full", PGSSLROOTCERT=str(ca), REDIS_TLS="true", REDIS_CA_FILE=str(ca))
    connect_args = config.SQLALCHEMY_ENGINE_OPTIONS["connect_args"]
    assert (connect_args["sslmode"], connect_args["sslrootcert"]) == ("verify-full", str(ca))
    assert config.REDIS_URL == f"rediss://:{STRONG}redis@redis:6379/0"
    assert config.REDIS_CA_FILE == str(ca)
    # Unset, libpq decides (prefer): nothing is passed.
    assert "sslmode" not in production().SQLALCHEMY_ENGINE_OPTIONS["connect_args"]


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"PGSSLMODE": "verify"}, "PGSSLMODE='verify': use one of disable"),
        ({"PGSSLMODE": "verify-full"}, "PGSSLMODE=verify-full needs PGSSLROOTCERT"),
        ({"PGSSLMODE": "verify-ca", "PGSSLROOTCERT": "/nowhere/ca.pem"}, "PGSSLROOTCERT=/nowhere/ca.pem: no such file"),
        ({"PGSSLMODE": "require", "DATABASE_URL": f"mysql://u:{STRONG}@elsewhere/x"}, "are for Postgres"),
        ({"REDIS_TLS": "true", "REDIS_CA_FILE": "/nowhere/ca.pem"}, "REDIS_CA_FILE=/nowhere/ca.pem: no such file"),
        ({"REDIS_CA_FILE": "system"}, "REDIS_CA_FILE=system: no such file"),
        ({"REDIS_CA_FILE": __file__}, "REDIS_CA_FILE is for TLS"),
        ({"REDIS_TLS": "maybe"}, "REDIS_TLS"),
    ],
)
def test_tls_settings_that_would_mean_less_than_they_say_are_refused(settings, problem):
    with pytest.raises(ConfigError, match=problem):
        production(**settings)


def test_unknown_blocklist_type_is_refused():
    with pytest.raises(ConfigError, match="BLACKLIST_STORAGE_TYPE='files'"):
        production(BLACKLIST_STORAGE_TYPE="files")


def test_redis_blocklist_without_redis_is_refused():
    with pytest.raises(ConfigError, match="needs REDIS_URL or REDIS_HOST"):
        production(REDIS_HOST="", REDIS_PASSWORD="")


def test_bad_numbers_and_booleans_are_named():
    with pytest.raises(ConfigError, match="JWT_DECODE_LEEWAY='soon'"):
        production(JWT_DECODE_LEEWAY="soon")
    with pytest.raises(ConfigError, match="LOG_TO_SYSLOG='maybe'"):
        production(LOG_TO_SYSLOG="maybe")


def memory_store_warnings(caplog, **settings) -> list[str]:
    base = {
        "FLASK_SECRET_KEY": STRONG,
        "JWT_SECRET_KEY": STRONG_2,
        "DATABASE_URL": "sqlite://",
        "BLACKLIST_STORAGE_TYPE": "memory",
    }
    with caplog.at_level("WARNING", logger="api"):
        create_app({**base, **settings})
    return [r.message for r in caplog.records if "BLACKLIST_STORAGE_TYPE=memory" in r.message]


def test_memory_store_in_production_logs_a_warning(caplog):
    assert memory_store_warnings(caplog, APP_ENV="production")


def test_memory_store_with_several_workers_logs_a_warning(caplog):
    (warning,) = memory_store_warnings(caplog, APP_ENV="test", GUNICORN_WORKERS="3")
    assert "with 3 workers" in warning


def test_memory_store_in_a_single_test_process_is_quiet(caplog):
    assert memory_store_warnings(caplog, APP_ENV="test", GUNICORN_WORKERS="1") == []


def test_production_mail_without_a_queue_is_warned_about(production_app, caplog):
    with caplog.at_level("WARNING", logger="api.app"):
        production_app(MAIL_SERVER="smtp.example.com")
    assert any("no job queue" in record.getMessage() for record in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="api.app"):
        production_app(MAIL_SERVER="smtp.example.com", JOBS_REDIS_URL=f"redis://jobs:{'q' * 40}@127.0.0.1:1/1")
    assert not any("no job queue" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"PRUNE_TOKENS_SCHEDULE": "every night"}, "PRUNE_TOKENS_SCHEDULE"),
        ({"PRUNE_TOKENS_SCHEDULE": "61 * * * *"}, "PRUNE_TOKENS_SCHEDULE"),
        ({"MAIL_RETRY_MAX_DELAY": "600", "JOBS_VISIBILITY_TIMEOUT": "600"}, "MAIL_RETRY_MAX_DELAY"),
    ],
)
def test_a_job_setting_that_cannot_work_stops_the_app_at_start_naming_it(overrides, named):
    with pytest.raises(ConfigError, match=named):
        production(**overrides)


def test_a_schedule_set_to_off_turns_its_chore_off():
    settings = {"APP_ENV": "test", "FLASK_SECRET_KEY": STRONG, "JWT_SECRET_KEY": STRONG_2}
    settings["BLACKLIST_STORAGE_TYPE"] = "memory"
    off = create_app({**settings, "PRUNE_TOKENS_SCHEDULE": "off"})
    assert "chores.prune_tokens" not in off.extensions["celery"].conf.beat_schedule
    assert "chores.prune_tokens" in create_app(settings).extensions["celery"].conf.beat_schedule
