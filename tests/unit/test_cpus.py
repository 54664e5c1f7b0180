"""The CPUs a container may use, read from cgroup files laid out as the kernel does (v2 and v1)."""

from __future__ import annotations

import os

import pytest

from runtime.cpus import available_cpus, default_hash_concurrency, default_workers

CPU_SET = len(os.sched_getaffinity(0))


def cgroup(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "max 100000\n"}, CPU_SET),
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 0.5),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "100000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 1.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, CPU_SET),
        ({}, CPU_SET),
    ],
    ids=["v2-quota", "v2-none", "v1-quota", "v1-cpuacct", "v1-none", "no-cgroup"],
)
def test_the_quota_caps_the_cpu_set(tmp_path, files, expected):
    assert available_cpus(cgroup(tmp_path, files)) == min(expected, CPU_SET)


def test_a_quota_above_the_cpu_set_does_not_raise_it(tmp_path):
    assert available_cpus(cgroup(tmp_path, {"cpu.max": f"{(CPU_SET + 4) * 100000} 100000"})) == CPU_SET


@pytest.mark.parametrize(
    ("cpus", "workers", "hashes"), [(0.5, 2, 1), (1.5, 3, 1), (2, 3, 1), (4, 5, 2), (8, 8, 4), (64, 8, 32)]
)
def test_defaults_follow_the_cpus_a_container_may_use(cpus, workers, hashes):
    assert (default_workers(cpus), default_hash_concurrency(cpus)) == (workers, hashes)
