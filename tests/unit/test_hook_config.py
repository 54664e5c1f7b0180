"""Hooks from the environment or from a hooks file; invalid files stop the start, naming the problem."""

import json

import pytest

from hook.hooks import ConfigError, load_hooks

SECRET = "a-webhook-secret-of-some-length"


def hooks_file(tmp_path, document):
    path = tmp_path / "hooks.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return {"HOOKS_FILE": str(path), "HOOK_SECRET": SECRET}


def a_hook(**changes):
    hook = {"id": "github", "secrets": {"env": ["HOOK_SECRET"]}, "trigger": {"event": "push", "branch": "main"}}
    hook.update(changes)
    return hook


def test_single_hook_from_the_environment():
    (hook,) = load_hooks({"HOOK_SECRET": SECRET, "HOOK_REPOSITORY": "acme/shop", "HOOK_BRANCH": "release"}).values()
    assert (hook.id, hook.branch, hook.ref, hook.repository, hook.command) == (
        "github",
        "release",
        "refs/heads/release",
        "acme/shop",
        "deploy",
    )
    assert hook.secrets == (SECRET.encode(),)


def test_two_secrets_for_rotation():
    (hook,) = load_hooks({"HOOK_SECRET": SECRET, "HOOK_SECRET_PREVIOUS": SECRET + "-old"}).values()
    assert len(hook.secrets) == 2


def test_secret_from_a_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(f"{SECRET}\n{SECRET}-next\n")
    (hook,) = load_hooks({"HOOK_SECRET_FILE": str(secret_file)}).values()
    assert hook.secrets == (SECRET.encode(), f"{SECRET}-next".encode())


def test_no_secret_is_an_error():
    with pytest.raises(ConfigError, match="no secret is set"):
        load_hooks({})


def test_a_short_secret_is_an_error():
    with pytest.raises(ConfigError, match="shorter than 16"):
        load_hooks({"HOOK_SECRET": "short"})


def test_the_deployer_loads_hooks_without_secrets():
    (hook,) = load_hooks({"HOOK_BRANCH": "main"}, with_secrets=False).values()
    assert hook.secrets == ()


def test_several_hooks_from_a_file(tmp_path):
    environ = hooks_file(
        tmp_path,
        {
            "hooks": [
                a_hook(),
                a_hook(
                    id="docs", trigger={"branch": "gh-pages", "repository": "acme/docs"}, command=["scripts/publish"]
                ),
            ]
        },
    )
    hooks = load_hooks(environ)
    assert sorted(hooks) == ["docs", "github"]
    assert hooks["docs"].command == ("scripts/publish",)
    assert hooks["docs"].repository == "acme/docs"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"hooks": []}, "no hooks"),
        ({"hooks": [a_hook()], "extra": 1}, r'expected \{"hooks"'),
        ({"hooks": [a_hook(), a_hook()]}, "appears twice"),
        ({"hooks": [a_hook(id="Bad Id")]}, "id must be lowercase"),
        ({"hooks": [a_hook(id="status")]}, "reserved"),
        ({"hooks": [a_hook(colour="blue")]}, "unknown keys"),
        ({"hooks": [a_hook(trigger={"branch": "main", "tag": "v1"})]}, "unknown trigger keys"),
        ({"hooks": [a_hook(trigger={"event": "issues", "branch": "main"})]}, "can only be push"),
        ({"hooks": [a_hook(trigger={"branch": "refs/heads/main"})]}, "branch name"),
        ({"hooks": [a_hook(trigger={"branch": "main", "repository": "no-slash"})]}, "owner/name"),
        ({"hooks": [a_hook(command="rm -rf /")]}, 'command must be "deploy"'),
        ({"hooks": [a_hook(secrets={"env": ["UNSET_VARIABLE"]})]}, "no secret is set"),
        ({"hooks": [a_hook(secrets={"inline": SECRET})]}, "secrets takes env and file"),
        ({"hooks": ["github"]}, "must be an object"),
    ],
)
def test_invalid_hooks_files_name_the_problem(tmp_path, document, message):
    with pytest.raises(ConfigError, match=message):
        load_hooks(hooks_file(tmp_path, document))


def test_a_missing_hooks_file_is_named():
    with pytest.raises(ConfigError, match=r"/nowhere/hooks\.json"):
        load_hooks({"HOOKS_FILE": "/nowhere/hooks.json"})
