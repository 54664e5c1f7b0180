"""How many CPUs this process may use: the container's CPU quota (cgroup v2 or v1) and its CPU set,
not the host's count (``os.cpu_count()`` says 8 in a container limited to 1.5 CPUs on an 8-core host).

Worker counts and how many password hashes run at once follow this, so a container sized for its
quota is not sized for the host it happens to run on."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def _quota_v2(root: Path) -> float | None:
    """cgroup v2: ``cpu.max`` says ``<quota> <period>`` or ``max <period>``."""
    try:
        quota, period = (root / "cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _quota_v1(root: Path) -> float | None:
    """cgroup v1: ``cpu.cfs_quota_us`` (-1: none) over ``cpu.cfs_period_us``."""
    for folder in (root / "cpu", root / "cpu,cpuacct"):
        try:
            quota = int((folder / "cpu.cfs_quota_us").read_text())
            period = int((folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return quota / period if quota > 0 and period > 0 else None
    return None


def available_cpus(cgroup: Path = CGROUP) -> float:
    """The CPUs this process may use: its CPU set, capped by its quota when it has one."""
    try:
        cpu_set = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpu_set = os.cpu_count() or 1
    quota = _quota_v2(cgroup) or _quota_v1(cgroup)
    return min(float(cpu_set), quota) if quota else float(cpu_set)


def default_workers(cpus: float) -> int:
    """gunicorn workers: whole CPUs + 1, capped at 8 (`make bench-sweep`, docs/benchmarks-workers.md)."""
    return min(math.ceil(cpus) + 1, 8)


def default_hash_concurrency(cpus: float) -> int:
    """Argon2 hashes at once per container: half the CPUs, at least one (each takes a core and
    ARGON2_MEMORY_COST of memory; the rest of the CPU serves everything else)."""
    return max(1, math.floor(cpus / 2))
