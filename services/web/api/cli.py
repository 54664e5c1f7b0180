"""Operational commands: ``flask deploy``, ``flask create-admin``, ``flask prune-tokens``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask
from flask.cli import with_appcontext
from flask_migrate import upgrade
from sqlalchemy import text

from .auth.passwords import get_passwords
from .auth.schemas import RegisterSchema
from .extensions import db
from .models import Role, User
from .token_store import current_token_store

# Any fixed number: Postgres advisory locks are named by integers.
DEPLOY_LOCK_ID = 720618040


@contextmanager
def one_deploy_at_a_time() -> Iterator[None]:
    """Two deploys starting together (replicas, a push during a restart) take turns on Postgres."""
    if db.engine.dialect.name != "postgresql":
        yield
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": DEPLOY_LOCK_ID})
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": DEPLOY_LOCK_ID})


@click.command("deploy")
@with_appcontext
def deploy_command() -> None:
    """Upgrade the schema to head and insert or update the default roles. Idempotent."""
    with one_deploy_at_a_time():
        upgrade()
        changed = Role.insert_defaults()
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


@click.command("prune-tokens")
@with_appcontext
def prune_tokens_command() -> None:
    """Delete expired revocation, rotation and throttle entries (database backend; Redis expires its own)."""
    removed = current_token_store().prune()
    click.echo(f"prune-tokens: removed {removed} expired entries from the {current_token_store().kind} store")


def init_app(app: Flask) -> None:
    for command in (deploy_command, create_admin_command, prune_tokens_command):
        app.cli.add_command(command)
