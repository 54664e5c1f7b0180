"""The app's Redis ACL as production has it: compose/redis/app.acl, which compose, Swarm
(compose/redis/start-with-acl.sh) and deploy/install-host.sh all read."""

from harness.paths import REPO_ROOT

APP_ACL = REPO_ROOT / "compose/redis/app.acl"


def app_rules() -> list[str]:
    """The app user's ACL rules, as redis-cli ACL SETUSER takes them."""
    lines = APP_ACL.read_text().splitlines()
    return [word for line in lines if not line.startswith("#") for word in line.split()]


def allowed_commands(rules: list[str]) -> set[str]:
    return {rule[1:] for rule in rules if rule.startswith("+")}
