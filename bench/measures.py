"""What the benchmark measures: the scenarios run in paired rounds, and what is not throughput
(Argon2's cost, memory, refresh rotation under concurrency, versions, the machine)."""

from __future__ import annotations

import json
import math
import os
import platform
import random
import re
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import requests
from docker.models.containers import Container

from bench.loadgen import (
    FIXED_RATE_CAP,
    WARMUP_SECONDS,
    Run,
    Scenario,
    Step,
    oha_binary,
    oha_fixed_rate,
    rounds_of,
    wrk,
    wrk_version,
)
from bench.profile import enqueue_cost, framework_cost, profile_protected
from bench.stack import LOADGEN_CPU, PASSWORD, BenchStack, log, run
from harness.stacks import memory_mib, output


def argon2_cost_ms(stack: BenchStack) -> dict[str, Any]:
    code = (
        "import time; from api.config import load_config; from argon2 import PasswordHasher\n"
        "c = load_config()\n"
        "ph = PasswordHasher(time_cost=c.ARGON2_TIME_COST, memory_cost=c.ARGON2_MEMORY_COST, "
        "parallelism=c.ARGON2_PARALLELISM)\n"
        "h = ph.hash('x' * 20); n = 20; t = time.perf_counter()\n"
        "for _ in range(n): ph.verify(h, 'x' * 20)\n"
        "print(f'{(time.perf_counter() - t) / n * 1000:.1f} {c.ARGON2_TIME_COST} {c.ARGON2_MEMORY_COST} "
        "{c.ARGON2_PARALLELISM}')\n"
    )
    ms, t, m, p = stack.python_in_web(code).split()[-4:]
    return {"verify_ms": float(ms), "time_cost": int(t), "memory_kib": int(m), "parallelism": int(p)}


def memory(stack: BenchStack) -> dict[str, Any]:
    code = (
        "import os, json\n"
        "rows = []\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try:\n"
        "        cmd = open(f'/proc/{pid}/cmdline').read()\n"
        "        if 'bin/gunicorn' not in cmd or int(pid) == os.getpid(): continue\n"
        "        rollup = open(f'/proc/{pid}/smaps_rollup').read().splitlines()[1:]\n"
        "        ppid = open(f'/proc/{pid}/stat').read().split()[3]\n"
        "    except OSError: continue  # gone meanwhile\n"
        "    fields = dict(l.split(':', 1) for l in rollup)\n"
        "    rows.append({'pid': int(pid), 'master': ppid == '0', 'rss_kib': int(fields['Rss'].split()[0]),\n"
        "                 'pss_kib': int(fields['Pss'].split()[0])})\n"
        "print(json.dumps(rows))\n"
    )
    processes = json.loads(stack.python_in_web(code).strip().splitlines()[-1])
    workers = [p for p in processes if not p["master"]]
    return {
        "container_mib": round(memory_mib(stack.container("web")), 1),
        "workers": len(workers),
        "worker_rss_mib": round(statistics.median(p["rss_kib"] for p in workers) / 1024, 1),
        "worker_pss_mib": round(statistics.median(p["pss_kib"] for p in workers) / 1024, 1),
        "master_rss_mib": round(sum(p["rss_kib"] for p in processes if p["master"]) / 1024, 1),
    }


def all_container_memory(stack: BenchStack) -> dict[str, Any]:
    return {service: round(memory_mib(stack.container(service)), 1) for service in ("nginx", "web", "db", "redis")}


def refresh_under_concurrency(stack: BenchStack, seconds: float, users: int = 16) -> dict[str, Any]:
    """Each user rotates its own chain as fast as it can; then a stampede on one token. Rotation
    must neither lose a family (a good chain refused) nor duplicate one (two successors)."""
    chains = [stack.login(f"rotate-{n}-{time.time_ns()}@bench.example")["refresh_token"] for n in range(users)]
    outcomes: Counter[int] = Counter()
    deadline = time.monotonic() + seconds

    def rotate(index: int) -> None:
        session = requests.Session()
        token = chains[index]
        while time.monotonic() < deadline:
            response = session.post(
                f"{stack.direct}/api/auth/refresh", headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
            outcomes[response.status_code] += 1
            if response.status_code != 200:
                return
            token = response.json()["refresh_token"]
        chains[index] = token

    started = time.monotonic()
    with ThreadPoolExecutor(users) as pool:
        list(pool.map(rotate, range(users)))
    elapsed = time.monotonic() - started
    alive = sum(
        requests.post(f"{stack.direct}/api/auth/refresh", headers={"Authorization": f"Bearer {t}"}, timeout=10).ok
        for t in chains
    )
    # The stampede: one token, presented by many at once.
    token = stack.login(f"stampede-{time.time_ns()}@bench.example")["refresh_token"]
    with ThreadPoolExecutor(16) as pool:
        codes = list(
            pool.map(
                lambda _: (
                    requests.post(
                        f"{stack.direct}/api/auth/refresh", headers={"Authorization": f"Bearer {token}"}, timeout=10
                    ).status_code
                ),
                range(16),
            )
        )
    return {
        "users": users,
        "rotations": outcomes[200],
        "refused": sum(outcomes.values()) - outcomes[200],
        "rotations_per_s": outcomes[200] / elapsed,
        "chains_alive_after": alive,
        "stampede_successes": codes.count(200),
        "stampede_refused": len(codes) - codes.count(200),
    }


def versions(stack: BenchStack) -> dict[str, Any]:
    web = stack.container("web")
    return {
        "python": output(web, ["python", "--version"]).strip(),
        "gunicorn": output(web, ["gunicorn", "--version"]).strip(),
        "nginx": output(stack.container("nginx"), ["nginx", "-v"]).strip(),
        "postgres": output(stack.container("db"), ["postgres", "--version"]).strip(),
        "redis": output(stack.container("redis"), ["redis-server", "--version"]).split(" sha")[0],
        "wrk": wrk_version(),
        "oha": run([oha_binary(), "--version"]).stdout.strip(),
        "images": {s: image_tag(stack.container(s)) for s in ("web", "nginx", "db", "redis")},
        "gunicorn_config": output(
            web,
            [
                "python",
                "-c",
                "import runpy; s = runpy.run_path('gunicorn.conf.py'); "
                "print(s['workers'], s['worker_class'], s['threads'])",
            ],
        ).split()[-3:],
    }


def image_tag(container: Container) -> str:
    """The image as the stack names it (an image may carry other tags too, a registry's)."""
    return str(container.attrs["Config"]["Image"])


def machine() -> dict[str, Any]:
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(int(meminfo["MemTotal"].split()[0]) / 2**20, 1),
        "kernel": platform.release(),
        "docker": docker.from_env().version()["Version"],
    }


def measure(stack: BenchStack, rounds: int, seconds: float) -> dict[str, Any]:
    edge_url, nginx = stack.edge, stack.address("nginx")
    index = requests.get(edge_url + "/", verify=False, timeout=10).text
    favicon = re.search(r'href="(/assets/favicon\.[0-9a-f]+\.svg)"', index)  # the smallest hashed asset
    if favicon is None:
        raise SystemExit("the SPA's index names no hashed favicon: is the SPA built?")
    asset = favicon[1]
    asset_bytes = len(requests.get(edge_url + asset, verify=False, timeout=10).content)
    token = stack.login("bench@bench.example")["access_token"]
    bearer = (f"Authorization: Bearer {token}",)
    admin = (f"Authorization: Bearer {stack.admin_login('admin@bench.example')['access_token']}",)
    body = json.dumps({"email": "bench@bench.example", "password": PASSWORD})
    s = {
        "ceiling": Scenario("nginx fixed 200 (HTTPS)", f"{edge_url}/edge-health"),
        "ceiling_http": Scenario("nginx fixed 200 (plain HTTP)", f"http://{nginx}:8080/edge-health"),
        "asset": Scenario(f"small hashed asset ({asset_bytes} B)", f"{edge_url}{asset}"),
        "index": Scenario("index.html", f"{edge_url}/"),
        "bare": Scenario("bare API through nginx (HTTPS)", f"{edge_url}/api/healthz"),
        "bare_plain": Scenario("bare API through nginx (plain HTTP)", f"http://{nginx}:8090/api/healthz"),
        "bare_direct": Scenario("bare API on gunicorn", f"{stack.direct}/api/healthz"),
        "hello": Scenario(
            "hello-world Flask on the same gunicorn settings", f"http://{stack.address('hello')}:8000/api/healthz"
        ),
        "protected": Scenario("protected API through nginx (HTTPS)", f"{edge_url}/api/users/me", headers=bearer),
        "protected_direct": Scenario("protected API on gunicorn", f"{stack.direct}/api/users/me", headers=bearer),
        "protected_nometrics": Scenario(
            "protected API on gunicorn, metrics off",
            f"http://{stack.address('web-nometrics')}:8000/api/users/me",
            headers=bearer,
        ),
        "listing_direct": Scenario(
            "an admin's user listing on gunicorn (database queries)",
            f"{stack.direct}/api/users?per_page=20",
            headers=admin,
        ),
        "listing_unbounded": Scenario(
            "the same, database bounds off",
            f"http://{stack.address('web-unbounded')}:8000/api/users?per_page=20",
            headers=admin,
        ),
        "login": Scenario(
            "login on gunicorn",
            f"{stack.direct}/api/auth/login",
            method="POST",
            headers=("Content-Type: application/json",),
            body=body,
            connections=8,
        ),
    }
    results: dict[str, Any] = {"machine": machine(), "versions": versions(stack), "rounds": rounds, "seconds": seconds}
    results["method"] = {
        "loadgen_cpu": LOADGEN_CPU,
        "warmup_seconds": WARMUP_SECONDS,
        "addresses": "container addresses on the edge network (no published port, no docker-proxy)",
    }
    results["memory_idle"] = memory(stack)
    results["containers_idle_mib"] = all_container_memory(stack)

    log("the edge: hashed asset, index.html, nginx's fixed 200 over HTTPS and plain HTTP")
    edge, _ = rounds_of(
        [
            Step("asset", s["asset"]),
            Step("ceiling", s["ceiling"]),
            Step("index", s["index"]),
            Step("ceiling_http", s["ceiling_http"]),
        ],
        rounds,
        seconds,
    )
    log("the app on gunicorn: bare, the hello-world ceiling, protected (metrics on, off), a listing (bounds on, off)")
    app, _ = rounds_of(
        [
            Step("bare_direct", s["bare_direct"]),
            Step("hello", s["hello"]),
            Step("protected_direct", s["protected_direct"]),
            Step("protected_nometrics", s["protected_nometrics"]),
            Step("listing_direct", s["listing_direct"]),
            Step("listing_unbounded", s["listing_unbounded"]),
        ],
        rounds,
        seconds,
    )
    log("the API through nginx: bare over HTTPS and plain HTTP, on gunicorn, protected, during a login flood")
    api, floods = rounds_of(
        [
            Step("bare", s["bare"]),
            Step("bare_plain", s["bare_plain"]),
            Step("bare_direct_edge", s["bare_direct"]),
            Step("protected", s["protected"]),
            Step("bare_flood", s["bare"], during=s["login"]),
        ],
        rounds,
        seconds,
    )
    runs = {**edge, **app, **api}
    names = {
        **{key: sc.name for key, sc in s.items()},
        "bare_flood": "bare API through nginx during a login flood",
        "bare_direct_edge": "bare API on gunicorn",
    }
    results["pairs"] = {key: paired(runs, names, a, b) for key, (a, b) in PAIRS.items()}
    results["runs"] = {key: runs_summary(names[key], measured) for key, measured in runs.items()}
    results["login_flood"] = {"login_rps": statistics.median(r.rps for r in floods)}

    log("login on gunicorn")
    login_run = wrk(s["login"], seconds + 4)
    results["login"] = {**run_summary(login_run), "argon2": argon2_cost_ms(stack)}

    log("tail latency at a fixed rate (oha, latency-corrected)")
    results["fixed_rate"] = {}
    for key in ("ceiling", "asset", "bare", "protected", "protected_direct"):
        # Half of what wrk measured, but no more than one oha thread drives with TLS, or the tail
        # measured would be the load generator's.
        rate = min(FIXED_RATE_CAP, max(50, int(statistics.median(r.rps for r in runs[key]) * 0.5)))
        results["fixed_rate"][key] = {"name": s[key].name, **oha_fixed_rate(s[key], rate, math.ceil(seconds))}

    log("refresh rotation under concurrency")
    results["refresh"] = refresh_under_concurrency(stack, seconds)
    log("profiling the protected endpoint (py-spy)")
    results["profile"] = profile_protected(stack, s["protected"], math.ceil(seconds) + 2)
    log("what a bare request costs in the app, next to a hello-world Flask view")
    results["framework_cost"] = framework_cost(stack)
    log("what queuing a mail adds to a request")
    results["enqueue_cost"] = enqueue_cost(stack)
    results["memory_loaded"] = memory(stack)
    results["containers_loaded_mib"] = all_container_memory(stack)
    results["scenarios"] = {key: sc.name for key, sc in s.items()}
    return results


def run_summary(r: Run) -> dict[str, Any]:
    return {
        "rps": round(r.rps, 1),
        "p50_ms": round(r.p50_ms, 2),
        "p99_ms": round(r.p99_ms, 2),
        "requests": r.requests,
        "failures": r.failures,
    }


def runs_summary(name: str, runs: list[Run]) -> dict[str, Any]:
    return {
        "name": name,
        "rps_median": round(statistics.median(r.rps for r in runs), 1),
        "p50_ms_median": round(statistics.median(r.p50_ms for r in runs), 2),
        "p99_ms_median": round(statistics.median(r.p99_ms for r in runs), 2),
        "requests": sum(r.requests for r in runs),
        "failures": sum(r.failures for r in runs),
    }


def paired(runs: dict[str, list[Run]], names: dict[str, str], a: str, b: str) -> dict[str, Any]:
    ratios = [x.rps / y.rps for x, y in zip(runs[a], runs[b], strict=True)]
    low, high = median_interval(ratios)
    return {
        "a": names[a],
        "b": names[b],
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_min": round(min(ratios), 3),
        "ratio_max": round(max(ratios), 3),
        "ratio_interval": [round(low, 3), round(high, 3)],
        "ratios": [round(r, 3) for r in ratios],
    }


RESAMPLES = 2000


def median_interval(ratios: list[float], level: float = 0.95) -> tuple[float, float]:
    """Where the median of these pairs could have fallen in another run, by the percentile
    bootstrap: the pairs drawn again with replacement, RESAMPLES times (a fixed seed, so the report
    is the same for the same runs). One pair's range says how noisy a pair is; this says how far the
    median itself can be trusted."""
    draw = random.Random(0)  # noqa: S311 (resampling, not a secret)
    medians = sorted(statistics.median(draw.choices(ratios, k=len(ratios))) for _ in range(RESAMPLES))
    tail = (1 - level) / 2
    return medians[int(tail * RESAMPLES)], medians[int((1 - tail) * RESAMPLES) - 1]


# The ratios reported, each A ÷ B from runs in the same rounds.
PAIRS = {
    "protected_vs_bare_direct": ("protected_direct", "bare_direct"),
    "bare_vs_hello": ("bare_direct", "hello"),
    "metrics_on_vs_off": ("protected_direct", "protected_nometrics"),
    "bounds_on_vs_off": ("listing_direct", "listing_unbounded"),
    "nginx_vs_direct": ("bare", "bare_direct_edge"),
    "nginx_plain_vs_direct": ("bare_plain", "bare_direct_edge"),
    "protected_vs_bare": ("protected", "bare"),
    "bare_during_login_flood": ("bare_flood", "bare"),
    "static_vs_ceiling": ("asset", "ceiling"),
    "index_vs_ceiling": ("index", "ceiling"),
    "https_vs_http": ("ceiling", "ceiling_http"),
}
