"""One list of the app's Redis commands (compose/redis/app.acl), read by every Redis the app meets
in production: compose and Swarm (start-with-acl.sh, mounted by docker-compose.prod.yml) and a
host without Docker (deploy/install-host.sh). tests/integration/test_redis_acl.py holds the list
against the store's real traffic."""

import subprocess

import yaml

from harness.paths import REPO_ROOT
from redis_acl import APP_ACL, allowed_commands, app_rules

MOUNTED_AT = "/usr/local/etc/redis/app.acl"


def test_the_rules_keep_the_app_to_its_own_keys_and_nothing_else():
    rules = app_rules()
    assert rules[:3] == ["~auth:*", "resetchannels", "-@all"]
    assert all(rule.startswith("+") for rule in rules[3:]), rules
    assert not allowed_commands(rules) & {"keys", "flushall", "flushdb", "config", "acl", "eval", "scan"}


def test_compose_and_swarm_start_redis_with_the_file():
    redis = yaml.safe_load((REPO_ROOT / "docker-compose.prod.yml").read_text())["services"]["redis"]
    assert f"./compose/redis/app.acl:{MOUNTED_AT}:ro" in redis["volumes"]
    script = (REPO_ROOT / "compose/redis/start-with-acl.sh").read_text()
    assert f"grep -v '^#' {MOUNTED_AT}" in script
    assert "user app on #$app_hash $app_rules" in script


def test_a_host_install_gives_its_redis_user_the_same_rules():
    script = (REPO_ROOT / "deploy/install-host.sh").read_text()
    assert """rules=$(grep -v '^#' "$here/compose/redis/app.acl" | tr '\\n' ' ')""" in script
    assert 'ACL SETUSER flask-stack on ">$password" $rules' in script


def test_the_rules_as_the_scripts_read_them_are_the_rules_the_tests_read():
    read = subprocess.run(
        ["sh", "-c", f"grep -v '^#' {APP_ACL} | tr '\\n' ' '"], capture_output=True, text=True, check=True
    ).stdout
    assert read.split() == app_rules()


def test_no_other_file_spells_out_the_apps_commands():
    tracked = subprocess.run(
        ["git", "grep", "--untracked", "-l", "-F", "-e", "~auth:* resetchannels", "--", ".", ":!tests"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert tracked == ["compose/redis/app.acl"]
