"""A password change ends every session, those racing it too: threads sign in with the old password
while the owner changes it (production's Argon2 costs, so each sign-in takes as long as it does in
production and the race has room), on real Postgres and MariaDB. Every token those sign-ins got is
refused once the change has answered, and so is its refresh token."""

from __future__ import annotations

import threading

import pytest

from api import create_app
from api.cli import deploy_command
from contract import PASSWORD, Api, bearer

SIGNING_IN = 4  # threads signing in with the old password
ROUNDS = 3  # password changes, each racing the sign-ins


def change_while_signing_in(app, email: str, old_password: str, change) -> tuple[object, list[dict]]:
    """``change()`` while SIGNING_IN threads sign in with ``old_password`` until it has answered:
    its answer, and the token pairs the sign-ins got."""
    raced: list[dict] = []
    started = threading.Barrier(SIGNING_IN + 1)
    changed = threading.Event()

    def sign_in_until_changed() -> None:
        client = Api(app.test_client())
        started.wait()
        while not changed.is_set():
            response = client.login(email, old_password)
            if response.status_code == 200:
                raced.append(response.json)

    threads = [threading.Thread(target=sign_in_until_changed) for _ in range(SIGNING_IN)]
    for thread in threads:
        thread.start()
    started.wait()
    try:
        answer = change()
    finally:
        changed.set()
        for thread in threads:
            thread.join(timeout=60)
    return answer, raced


@pytest.mark.parametrize("database_server", ["postgres", "mariadb"])
def test_no_sign_in_racing_a_password_change_outlives_it(settings):
    app = create_app(
        {
            **settings,
            "ARGON2_TIME_COST": "3",
            "ARGON2_MEMORY_COST": "65536",
            "PASSWORD_HASH_CONCURRENCY": str(SIGNING_IN + 1),
        }
    )
    assert app.test_cli_runner().invoke(deploy_command).exit_code == 0
    email, password = "racing@example.com", PASSWORD
    owner = Api(app.test_client())
    assert owner.register(email, password).status_code == 201
    for round_number in range(ROUNDS):
        access = owner.tokens(email, password)["access_token"]
        new_password = f"{PASSWORD} round {round_number}"
        response, raced = change_while_signing_in(
            app,
            email,
            password,
            lambda: owner.post(
                "/api/auth/password",
                json={"current_password": password, "new_password": new_password},  # noqa: B023 - called at once
                headers=bearer(access),  # noqa: B023
            ),
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert raced, "no sign-in raced the change: nothing was tested"
        survivors = [tokens for tokens in raced if owner.me(tokens["access_token"]).status_code != 401]
        assert survivors == [], f"{len(survivors)} of {len(raced)} racing sign-ins outlived the change"
        assert all(owner.refresh(tokens["refresh_token"]).status_code == 401 for tokens in raced)
        assert owner.me(response.json["access_token"]).status_code == 200  # the owner's new pair
        password = new_password
