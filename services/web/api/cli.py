"""Operational commands: ``flask deploy``, ``flask create-admin``, ``flask users``, ``flask prune-tokens``,
``flask jobs``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click
import redis
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from sqlalchemy import text

from .auth.passwords import get_passwords
from .auth.schemas import RegisterSchema
from .breaker import CircuitOpen
from .database import DATABASE_UNAVAILABLE, session_bounds
from .errors import ApiError
from .extensions import db
from .jobs import CHORES, DEAD_LETTERS, KEY_PREFIX, QUEUE, Cron, last_run_key, queue_client
from .models import Role, User
from .models.columns import MYSQL_DIALECTS
from .token_store import StoreMisconfigured, current_token_store
from .users.accounts import delete_account, role_named, update_account

# The database's own lock, held by the connection that took it: take, release. Postgres names its
# advisory locks by integers (any fixed one), MariaDB/MySQL by strings. SQLite has one writer anyway.
DEPLOY_LOCK_ID = 720618040
DEPLOY_LOCK_NAME = "flask-stack-deploy"
DEPLOY_LOCK_WAIT_SECONDS = 600
GET_LOCK = (
    f"SELECT GET_LOCK('{DEPLOY_LOCK_NAME}', {DEPLOY_LOCK_WAIT_SECONDS})",
    f"SELECT RELEASE_LOCK('{DEPLOY_LOCK_NAME}')",
)
# How long `flask deploy` waits for the database to answer: a migration started beside its database
# (a container whose name the engine's DNS does not resolve yet, a database restarting) waits a
# little rather than failing the start of the release.
DATABASE_WAIT_SECONDS = 30.0
# What a server says when it answered and refused the credentials (Postgres's libpq message, which
# carries no SQLSTATE at connect; MySQL's error 1045): no wait changes that (a password that is not
# the one the database volume was made with), so `flask deploy` stops at once and says so.
REFUSED_CREDENTIALS = ("password authentication failed for user", "Access denied for user")
DEPLOY_LOCKS = {
    "postgresql": (f"SELECT pg_advisory_lock({DEPLOY_LOCK_ID})", f"SELECT pg_advisory_unlock({DEPLOY_LOCK_ID})"),
    **dict.fromkeys(MYSQL_DIALECTS, GET_LOCK),
}


def wait_for_the_database(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return
        except (*DATABASE_UNAVAILABLE, CircuitOpen) as error:
            if any(refusal in str(error) for refusal in REFUSED_CREDENTIALS):
                raise click.ClickException(f"the database refused the app's credentials: {error}") from error
            if time.monotonic() >= deadline:
                raise click.ClickException(f"the database did not answer within {seconds:.0f}s: {error}") from error
            time.sleep(1)


@contextmanager
def one_deploy_at_a_time() -> Iterator[None]:
    """Two deploys starting together (replicas, a push during a restart) take turns."""
    lock = DEPLOY_LOCKS.get(db.engine.dialect.name)
    if lock is None:
        yield
        return
    take, release = lock
    with (
        db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection,
        # Waiting for the lock is this statement's whole point: bounded by that wait, not a request's bounds.
        session_bounds(connection, DEPLOY_LOCK_WAIT_SECONDS + 60, DEPLOY_LOCK_WAIT_SECONDS + 60),
    ):
        # pg_advisory_lock waits as long as it takes; GET_LOCK says 0 when its wait ran out.
        if connection.scalar(text(take)) == 0:
            raise click.ClickException(f"another deploy held the lock for {DEPLOY_LOCK_WAIT_SECONDS}s")
        try:
            yield
        finally:
            connection.execute(text(release))


@click.command("deploy")
@with_appcontext
def deploy_command() -> None:
    """Upgrade the schema to head and insert or update the default roles, then run every operation
    of the token store once: a release whose store refuses one (Redis's ACL) stops here, before it
    serves. Idempotent."""
    wait_for_the_database(DATABASE_WAIT_SECONDS)
    with one_deploy_at_a_time():
        upgrade()  # with the migrations' own bounds (migrations/env.py)
        changed = Role.insert_defaults()
    try:
        current_token_store().check()
    except StoreMisconfigured as refused:
        raise click.ClickException(
            f"the token store refused a command the app runs ({refused}); "
            "the app's Redis user must allow every command compose/redis/app.acl lists"
        ) from refused
    click.echo(f"deploy: schema at head; roles {'updated: ' + ', '.join(changed) if changed else 'unchanged'}")


@click.command("create-admin")
@with_appcontext
@click.option("--email", required=True, help="The admin's e-mail address.")
def create_admin_command(email: str) -> None:
    """Create an admin, or promote an existing user. The password comes from ADMIN_PASSWORD or a
    prompt, never from the command line (where ``ps`` and shell history would show it)."""
    admin_role = db.session.scalar(db.select(Role).where(Role.name == "admin"))
    if admin_role is None:
        raise click.ClickException("No admin role: run `flask deploy` first")
    user = User.by_email(email)
    if user is not None:
        user.role = admin_role
        db.session.commit()
        click.echo(f"create-admin: {user.email} is now an admin (password unchanged)")
        return
    password = os.environ.get("ADMIN_PASSWORD") or click.prompt("Password", hide_input=True, confirmation_prompt=True)
    errors = RegisterSchema().validate({"email": email, "password": password})
    if errors:
        raise click.ClickException(f"Invalid admin: {errors}")
    user = User(email=email.strip(), password_hash=get_passwords().hash(password), role=admin_role)
    db.session.add(user)
    db.session.commit()
    click.echo(f"create-admin: created {user.email}")


@click.group("users")
def users_group() -> None:
    """Change accounts as an admin does through the API (same rules: taking rights away signs the
    user out everywhere at once; the last admin stays)."""


def account(email: str) -> User:
    user = User.by_email(email)
    if user is None:
        raise click.ClickException(f"No account for {email}")
    return user


@contextmanager
def as_operator() -> Iterator[None]:
    """The API's refusals (last admin, unknown role) as the command's own error."""
    try:
        yield
    except ApiError as error:
        details = f" {error.details}" if error.details else ""
        raise click.ClickException(f"{error.code}: {error.message}{details}") from None


@users_group.command("update")
@with_appcontext
@click.option("--email", required=True, help="The account's e-mail address.")
@click.option("--role", help="The new role (user, admin).")
@click.option("--active/--disabled", default=None, help="Enable, or disable (its tokens stop working at once).")
def update_user_command(email: str, role: str | None, active: bool | None) -> None:
    """Change an account's role, or disable or enable it."""
    if role is None and active is None:
        raise click.UsageError("give --role, --active or --disabled")
    with as_operator():
        user = update_account(account(email), role=role_named(role) if role else None, active=active)
    click.echo(f"users: {user.email} is {'an active' if user.is_active else 'a disabled'} {user.role_name}")


@users_group.command("delete")
@with_appcontext
@click.option("--email", required=True, help="The account's e-mail address.")
@click.confirmation_option(prompt="Delete this account for good?")
def delete_user_command(email: str) -> None:
    """Delete an account; its tokens stop working at once."""
    user = account(email)
    with as_operator():
        delete_account(user)
    click.echo(f"users: deleted {email}")


@click.command("prune-tokens")
@with_appcontext
def prune_tokens_command() -> None:
    """Delete expired revocation, rotation and throttle entries (database backend; Redis expires its own)."""
    from .auth.chores import prune_tokens

    removed = prune_tokens()
    click.echo(f"prune-tokens: removed {removed} expired entries from the {current_token_store().kind} store")


@click.command("jobs")
@with_appcontext
@click.option(
    "--dead", "dead_shown", default=10, show_default=True, help="How many of the newest dead letters to show."
)
def jobs_command(dead_shown: int) -> None:
    """The job queue: jobs waiting, jobs taken by a worker (running, or put off to be tried again),
    jobs given up on (dead letters), and each chore's schedule, next and last runs."""
    client = queue_client()
    if client is None:
        click.echo("queue: none (JOBS_REDIS_URL unset): each job runs in the process that asks for it")
    else:
        try:
            with client.pipeline(transaction=False) as pipe:
                pipe.llen(f"{KEY_PREFIX}{QUEUE}")
                pipe.hlen(f"{KEY_PREFIX}unacked")
                pipe.llen(DEAD_LETTERS)
                pipe.lrange(DEAD_LETTERS, 0, dead_shown - 1)
                pipe.mget([last_run_key(name) for name in CHORES] or ["-"])
                queued, taken, dead, letters, last_runs = pipe.execute()
        except redis.RedisError as error:
            raise click.ClickException(f"the job queue does not answer: {error}") from None
        click.echo(f"queued: {queued}\ntaken (running or waiting to be tried again): {taken}\ngiven up on: {dead}")
        for letter in map(json.loads, letters):
            click.echo(f"  {letter['at']}  {letter['task']}  {letter.get('subject', '')!r}  {letter['error']}")
    now = datetime.now(UTC)
    click.echo("chores:")
    for index, (name, setting) in enumerate(CHORES.items()):
        line = current_app.config[setting]
        last = last_runs[index] if client is not None else None
        next_run = Cron(line).next_after(now).isoformat(timespec="seconds") if line else "never"
        click.echo(f"  {name}  {setting}={line!r}  next {next_run}  last {last or '-'}")


def init_app(app: Flask) -> None:
    for command in (deploy_command, create_admin_command, users_group, prune_tokens_command, jobs_command):
        app.cli.add_command(command)
