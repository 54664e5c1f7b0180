"""The systemd units for a host without Docker (deploy/systemd), checked by systemd itself:
`systemd-analyze verify` (syntax, dependencies, executables) and `systemd-analyze security`
(the hardening adds up to a low exposure)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.paths import REPO_ROOT

UNITS = REPO_ROOT / "deploy" / "systemd"
# Where deploy/install-host.sh puts the releases and the hook's code.
INSTALL_ROOTS = ("/srv/flask-stack", "/opt/flask-stack")


@pytest.fixture
def units(tmp_path) -> Path:
    """The units with their install roots moved under tmp_path, where stand-in executables are
    (verify checks that every command exists)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is missing (Debian's systemd package)")

    def moved(text: str) -> str:
        for root in INSTALL_ROOTS:
            text = text.replace(root, f"{tmp_path}{root}")
        return text

    for unit in UNITS.iterdir():
        (tmp_path / unit.name).write_text(moved(unit.read_text()))
        for command in re.findall(r"^Exec\w+=[-@+!]*(/\S+)", moved(unit.read_text()), re.MULTILINE):
            if command.startswith(str(tmp_path)):
                stand_in = Path(command)
                stand_in.parent.mkdir(parents=True, exist_ok=True)
                stand_in.write_text("#!/bin/sh\n")
                stand_in.chmod(0o755)
    return tmp_path


def systemd_analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Without a running systemd as PID 1 (a container, CI) verify still reads the unit files.
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "notice"}
    return subprocess.run(["systemd-analyze", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_every_unit_verifies(units):
    names = sorted(path.name for path in UNITS.iterdir() if path.suffix in {".service", ".socket"})
    assert names
    result = systemd_analyze("verify", *(f"./{name}" for name in names), cwd=units)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


# The deployer runs sudo (setuid), so it cannot have NoNewPrivileges and rates higher.
@pytest.mark.parametrize(
    ("service", "most"),
    [("flask-stack-web.service", 2.0), ("flask-stack-hook.service", 2.0), ("flask-stack-deployer.service", 3.0)],
)
def test_services_are_hardened(units, service, most):
    result = systemd_analyze("security", "--offline=true", "--threshold=20", f"./{service}", cwd=units)
    exposure = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout + result.stderr)
    assert exposure, result.stdout + result.stderr
    assert float(exposure[1]) <= most, result.stdout
