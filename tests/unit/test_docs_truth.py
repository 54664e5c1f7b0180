"""The docs cannot lie about what they name: every `make X` is a target `make help` lists, every
setting named is read by something in the repository (and every setting the app reads is in the
docs), every path of the repository named exists, every /api route named is in the OpenAPI spec."""

import re
import subprocess

import pytest

from harness.paths import REPO_ROOT

DOCS = [REPO_ROOT / "README.md", REPO_ROOT / "CONTRIBUTING.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
# Where a setting can be read: the app, the services, the compose files, the scripts, the tests' stacks.
READERS = [
    "services",
    "compose",
    "deploy",
    "harness",
    "bench",
    "docker-compose.yml",
    "docker-compose.prod.yml",
    "Makefile",
    ".env.d",
    ".ci",
]
# Names of other programs' the docs use (Docker, Compose, requests, Linux's capabilities): not ours to read.
NOT_OURS = {"COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "DOCKER_HOST", "REQUESTS_CA_BUNDLE", "CAP_SYS_RESOURCE"}
# The spec's own addresses: the document and its browsable page.
SPEC_ITSELF = {"/api/openapi.json", "/api/docs"}
TOP_LEVEL = ("services/", "compose/", "deploy/", "docs/", "tests/", "harness/", "bench/", ".env.d/", ".ci/")


def docs_text() -> dict[str, str]:
    return {str(path.relative_to(REPO_ROOT)): path.read_text() for path in DOCS if path.exists()}


def named(pattern: str) -> list[tuple[str, str]]:
    """(document, what it names) for every match of ``pattern``'s first group."""
    return [(doc, match) for doc, text in docs_text().items() for match in re.findall(pattern, text)]


def repository_text() -> str:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "--", *READERS],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return "\n".join((REPO_ROOT / name).read_text(errors="replace") for name in listed if (REPO_ROOT / name).is_file())


def make_commands_shown() -> list[tuple[str, str]]:
    """(document, target) for every `make X` line of a fenced block (a console session)."""
    return [
        (doc, target)
        for doc, text in docs_text().items()
        for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.M | re.S)
        for target in re.findall(r"^\s*(?:\$ )?make ([a-z][a-z0-9-]*)", block, flags=re.M)
    ]


def test_every_make_target_named_is_one_make_help_lists():
    shown = subprocess.run(["make", "--no-print-directory", "help"], cwd=REPO_ROOT, capture_output=True, text=True)
    targets = set(re.findall(r"^\s+(?:\x1b\[36m)?([a-z][a-z0-9-]*)", shown.stdout, flags=re.M))
    named_or_shown = named(r"`make ([a-z][a-z0-9-]*)") + make_commands_shown()
    assert len(make_commands_shown()) > 10, "the console blocks were not found: the pattern is wrong"
    lies = sorted({(doc, target) for doc, target in named_or_shown if target not in targets})
    assert not lies, lies


def test_every_setting_named_is_read_by_something():
    code = repository_text()
    lies = sorted(
        {
            (doc, name)
            for doc, name in named(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)(?:=[^`]*)?`")
            if name not in NOT_OURS
            and not re.search(rf"\b{name}\b", code)
            # NAME_FILE: the secret NAME read from a file (api/config.py reads every secret so)
            and not (name.endswith("_FILE") and re.search(rf"\b{name.removesuffix('_FILE')}\b", code))
        }
    )
    assert not lies, lies


def test_every_setting_the_app_reads_is_documented():
    config = (REPO_ROOT / "services/web/api/config.py").read_text()
    read = set(re.findall(r"""s\.\w+\(\s*["']([A-Z][A-Z0-9_]+)["']""", config))
    documented = "\n".join(docs_text().values())
    missing = sorted(name for name in read if not re.search(rf"\b{name}\b", documented))
    assert not missing, missing


def made_by_the_operator(path: str) -> bool:
    """A path git ignores (.env.d/.env.production, secrets): `make secrets` and its like write it."""
    return subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO_ROOT).returncode == 0


def test_every_repository_path_named_exists():
    tops = "|".join(re.escape(top) for top in TOP_LEVEL)
    paths = named(rf"`((?:{tops})[^`\s]*)`")
    lies = sorted(
        {
            (doc, path)
            for doc, path in paths
            if not any(ch in path for ch in "*<{$")
            and not (REPO_ROOT / path.split(":")[0].rstrip(".,")).exists()
            and not made_by_the_operator(path.split(":")[0])
        }
    )
    assert not lies, lies


@pytest.fixture(scope="module")
def spec_paths(tmp_path_factory):
    from .conftest import make_app

    app = make_app(tmp_path_factory.mktemp("docs") / "docs.db")
    spec = app.test_client().get("/api/openapi.json").get_json()
    return [re.sub(r"\{[^}]+\}", "[^/]+", path) for path in spec["paths"]]


def test_every_api_route_named_is_in_the_openapi_spec(spec_paths):
    routes = named(r"(?<![\w.])(/api/[a-z0-9/{}<>_.-]*[a-z0-9}>])")
    lies = sorted(
        {
            (doc, route)
            for doc, route in routes
            if route not in SPEC_ITSELF
            and not any(re.fullmatch(path, re.sub(r"[{<][^}>]+[}>]", "1", route)) for path in spec_paths)
            and not any(path.startswith(route.rstrip("/")) for path in spec_paths)
        }
    )
    assert not lies, lies
