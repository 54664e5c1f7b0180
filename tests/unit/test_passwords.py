"""Argon2id hashing: parameters, rehash on login, and the dummy verification for unknown e-mails."""

from argon2 import extract_parameters

from api.config import Config
from api.extensions import db
from api.models import User
from contract import PASSWORD, Api


def stored_hash(app, email):
    with app.app_context():
        return User.by_email(email).password_hash


def test_production_defaults_exceed_the_owasp_minimum():
    # OWASP: Argon2id with at least 19 MiB, t=2, p=1.
    params = Config.DEFAULT_ARGON2
    assert params["memory_cost"] >= 19 * 1024 and params["time_cost"] >= 2 and params["parallelism"] >= 1


def test_passwords_are_stored_as_argon2id(api, app):
    api.register()
    password_hash = stored_hash(app, "user@example.com")
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash


def test_login_rehashes_when_the_parameters_change(app_factory):
    old = app_factory(ARGON2_TIME_COST=1, ARGON2_MEMORY_COST=8192)
    Api(old.test_client()).register()
    assert extract_parameters(stored_hash(old, "user@example.com")).time_cost == 1

    new = app_factory(ARGON2_TIME_COST=2, ARGON2_MEMORY_COST=9216)
    assert Api(new.test_client()).login().status_code == 200
    params = extract_parameters(stored_hash(new, "user@example.com"))
    assert (params.time_cost, params.memory_cost) == (2, 9216)
    assert Api(new.test_client()).login().status_code == 200


def test_unknown_email_costs_a_real_verification_with_the_same_parameters(api, app):
    passwords = app.extensions["passwords"]
    assert passwords._dummy_hash is None
    api.login("nobody@example.com", PASSWORD)
    dummy = extract_parameters(passwords._dummy_hash)
    real = passwords.hasher
    assert (dummy.time_cost, dummy.memory_cost, dummy.parallelism) == (
        real.time_cost,
        real.memory_cost,
        real.parallelism,
    )


def test_a_corrupt_stored_hash_is_a_failed_login_not_a_500(api, app):
    api.register()
    with app.app_context():
        User.by_email("user@example.com").password_hash = "not-a-hash"
        db.session.commit()
    assert api.login().status_code == 401
