"""`make bench`: measure the production stack's speed and cost, and write docs/benchmarks.md.

It starts its own copy of docker-compose.prod.yml (project flask-stack-bench, generated secrets,
gunicorn also published on loopback by compose/bench.yml), measures, and removes it. Absolute
figures drift on a shared machine, so every target is a ratio of two scenarios measured side by
side: A, B, A, B, ... (ROUNDS times each), reported as the median of the paired ratios. wrk (pinned
to one core) measures throughput; oha, at a fixed rate with latency correction, measures the tail
(wrk's own percentiles suffer from coordinated omission).

    .venv/bin/python bench/run.py [--rounds N] [--seconds S] [--report PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker
import requests
import urllib3

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from ports import free_port  # noqa: E402 - the tests' helper, shared rather than copied

PROJECT = "flask-stack-bench"
WRK_SCRIPT = REPO / "bench" / "wrk.lua"
LOADGEN_CPU = os.environ.get("BENCH_LOADGEN_CPU", "0")
FIXED_RATE_CAP = 2000  # requests/s
SETTLE_SECONDS = 3
CONNECTIONS = 64
PASSWORD = "benchmark password, long enough"
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # the stack's temporary certificate


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def run(argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kwargs)


# --- the stack ------------------------------------------------------------------------------------


class Stack:
    def __init__(self, home: Path):
        self.home = home
        self.env_file = home / "env.production"
        self.http_port, self.https_port, self.web_port = free_port(), free_port(), free_port()
        self.client = docker.from_env()

    @property
    def https(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def direct(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def compose(self, *args: str) -> subprocess.CompletedProcess:
        env_files = [a for p in (REPO / ".env", self.env_file) if p.exists() for a in ("--env-file", str(p))]
        argv = [
            "docker",
            "compose",
            "-p",
            PROJECT,
            *env_files,
            "-f",
            "docker-compose.prod.yml",
            "-f",
            "compose/bench.yml",
        ]
        env = {k: v for k, v in os.environ.items() if k not in {"COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"}}
        env.update(
            PROD_ENV_FILE=str(self.env_file),
            HTTP_PORT=str(self.http_port),
            HTTPS_PORT=str(self.https_port),
            BENCH_WEB_PORT=str(self.web_port),
            TLS_CERTS_DIR=str(self.home / "certs"),
            ACME_WEBROOT=str(self.home / "acme"),
            COMPOSE_PROFILES="",
        )
        return subprocess.run([*argv, *args], cwd=REPO, env=env, capture_output=True, text=True)

    def up(self) -> None:
        (self.home / "certs").mkdir()
        (self.home / "acme").mkdir()
        run([str(REPO / "compose/scripts/make-secrets.sh"), str(self.env_file)])
        self.down()
        log(f"starting the production stack as {PROJECT} (https :{self.https_port}, gunicorn :{self.web_port})")
        result = self.compose("up", "-d", "--build", "--wait")
        if result.returncode != 0:
            raise SystemExit(f"bench: the stack did not start:\n{result.stderr[-3000:]}")

    def down(self) -> None:
        subprocess.run([str(REPO / "compose/scripts/remove-project.sh"), "--volumes", PROJECT], capture_output=True)

    def container(self, service: str):
        (found,) = self.client.containers.list(
            filters={"label": [f"com.docker.compose.project={PROJECT}", f"com.docker.compose.service={service}"]}
        )
        return found

    def python_in_web(self, code: str) -> str:
        return self.container("web").exec_run(["python", "-c", code]).output.decode()


# --- load generators ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    url: str
    method: str = "GET"
    headers: tuple[str, ...] = ()
    body: str = ""
    connections: int = CONNECTIONS


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int


def wrk(scenario: Scenario, seconds: float) -> Run:
    env = {
        **os.environ,
        "BENCH_METHOD": scenario.method,
        "BENCH_BODY": scenario.body,
        "BENCH_HEADERS": "\n".join(scenario.headers),
    }
    argv = [
        "taskset",
        "-c",
        LOADGEN_CPU,
        "wrk",
        "-t",
        "1",
        "-c",
        str(scenario.connections),
        "-d",
        f"{math.ceil(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        scenario.url,
    ]
    output = run(argv, env=env).stdout
    summary = json.loads(output.split("BENCH_JSON ", 1)[1].splitlines()[0])
    failures = sum(summary[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return Run(
        summary["requests"] / (summary["duration_us"] / 1e6),
        summary["p50_us"] / 1000,
        summary["p99_us"] / 1000,
        summary["requests"],
        failures,
    )


def oha_binary() -> str | None:
    for candidate in (os.environ.get("OHA"), str(REPO / "build/oha/bin/oha"), shutil.which("oha")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def oha_fixed_rate(scenario: Scenario, rate: int, seconds: int) -> dict:
    """Latency at a fixed request rate, measured from when each request was due (no coordinated omission)."""
    argv = [
        "taskset",
        "-c",
        LOADGEN_CPU,
        oha_binary(),
        "-z",
        f"{seconds}s",
        "-c",
        str(scenario.connections),
        "-q",
        str(rate),
        "--latency-correction",
        "--wait-ongoing-requests-after-deadline",
        "--no-tui",
        "--insecure",
        "--output-format",
        "json",
        "-m",
        scenario.method,
    ]
    for header in scenario.headers:
        argv += ["-H", header]
    if scenario.body:
        argv += ["-d", scenario.body]
    report = json.loads(run([*argv, scenario.url]).stdout)
    statuses = {int(code): count for code, count in report.get("statusCodeDistribution", {}).items()}
    return {
        "rate": rate,
        "p50_ms": report["latencyPercentiles"]["p50"] * 1000,
        "p99_ms": report["latencyPercentiles"]["p99"] * 1000,
        "requests": sum(statuses.values()),
        "non_2xx": sum(count for code, count in statuses.items() if not 200 <= code < 300)
        + sum(report.get("errorDistribution", {}).values()),
    }


@dataclass(frozen=True)
class Step:
    key: str
    scenario: Scenario
    during: Scenario | None = None  # a second load running meanwhile (the login flood)


def rounds_of(steps: list[Step], rounds: int, seconds: float) -> tuple[dict[str, list[Run]], list[Run]]:
    """Every step in turn, ``rounds`` times: scenarios compared with each other were measured side by
    side, so drift on a shared machine hits both. Returns the runs by key, and the background runs."""
    runs: dict[str, list[Run]] = {step.key: [] for step in steps}
    background_runs: list[Run] = []
    for number in range(rounds):
        for step in steps:
            if step.during is None:
                runs[step.key].append(wrk(step.scenario, seconds))
                continue
            with Background(step.during, seconds) as background:
                runs[step.key].append(wrk(step.scenario, seconds))
            background_runs.append(background.result)
            time.sleep(SETTLE_SECONDS)  # the flood's last requests finish before the next measurement
        log(f"  round {number + 1}: " + ", ".join(f"{k} {v[-1].rps:,.0f}" for k, v in runs.items()) + " req/s")
    return runs, background_runs


class Background:
    """A second wrk running for the length of a `with` block (a login flood)."""

    def __init__(self, scenario: Scenario, seconds: float):
        self.scenario = scenario
        self.seconds = seconds
        self.result: Run | None = None

    def __enter__(self):
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        time.sleep(0.5)  # let the flood build up before the measured run starts
        return self

    def _run(self):
        self.result = wrk(self.scenario, self.seconds + 1)

    def __exit__(self, *_):
        self.thread.join()
        return False


# --- measurements that are not throughput ---------------------------------------------------------


def argon2_cost_ms(stack: Stack) -> dict:
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


def memory(stack: Stack) -> dict:
    container = stack.container("web")
    stats = container.stats(stream=False)
    usage = stats["memory_stats"]["usage"] - stats["memory_stats"].get("stats", {}).get("cache", 0)
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
        "container_mib": round(usage / 2**20, 1),
        "workers": len(workers),
        "worker_rss_mib": round(statistics.median(p["rss_kib"] for p in workers) / 1024, 1),
        "worker_pss_mib": round(statistics.median(p["pss_kib"] for p in workers) / 1024, 1),
        "master_rss_mib": round(sum(p["rss_kib"] for p in processes if p["master"]) / 1024, 1),
    }


def all_container_memory(stack: Stack) -> dict:
    result = {}
    for service in ("nginx", "web", "db", "redis"):
        stats = stack.container(service).stats(stream=False)["memory_stats"]
        result[service] = round((stats["usage"] - stats.get("stats", {}).get("cache", 0)) / 2**20, 1)
    return result


def login(stack: Stack, email: str) -> dict:
    session = requests.Session()
    session.post(f"{stack.direct}/api/auth/register", json={"email": email, "password": PASSWORD}, timeout=10)
    response = session.post(f"{stack.direct}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=10)
    response.raise_for_status()
    return response.json()


def refresh_under_concurrency(stack: Stack, seconds: float, users: int = 16) -> dict:
    """Each user rotates its own chain as fast as it can; then a stampede on one token. Rotation
    must neither lose a family (a good chain refused) nor duplicate one (two successors)."""
    chains = [login(stack, f"rotate-{n}-{time.time_ns()}@bench.example")["refresh_token"] for n in range(users)]
    outcomes: Counter = Counter()
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
    token = login(stack, f"stampede-{time.time_ns()}@bench.example")["refresh_token"]
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


def profile_protected(stack: Stack, scenario: Scenario, seconds: int) -> list[tuple[str, float]]:
    """py-spy on every gunicorn worker while the protected endpoint is under load: where the time goes."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    top = stack.client.api.top(stack.container("web").id, ps_args="-o pid,ppid,args")
    master = next(
        int(p[0]) for p in top["Processes"] if "gunicorn" in p[2] and not any(q[0] == p[1] for q in top["Processes"])
    )
    with tempfile.NamedTemporaryFile(suffix=".txt") as raw:
        recorder = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(master),
                "--subprocesses",
                "--duration",
                str(seconds),
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                raw.name,
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wrk(scenario, seconds)
        recorder.wait(timeout=seconds + 60)
        lines = Path(raw.name).read_text().splitlines()
    return attribute(lines)


# Steps of a protected request whose total (inclusive) time the profile reports.
STEPS = {
    "the whole request in Flask (Flask.wsgi_app)": "Flask.wsgi_app (flask/app.py",
    "access check (decode, revocation and profile, in api.auth.access)": "access_token_required.<locals>.wrapper",
    "- decoding and verifying the JWT (PyJWT)": "decode_access_token (api/auth/access.py",
    "- the one Redis round trip (revocation state and profile)": "session_state (api/auth/revocation.py",
    "serializing the response (flask-smorest, marshmallow)": "ResponseMixin.response.<locals>.decorator",
    "gunicorn reading and parsing the request": "ThreadWorker.handle (gunicorn/workers/gthread.py",
}
IDLE = ("_worker (concurrent/futures/thread.py", "EpollSelector.select", "Arbiter.", "wait_for_signals")


def attribute(lines: list[str]) -> dict:
    """Busy samples only (a thread waiting for work is not work): the share of time by the package
    the sampled frame was in, and the inclusive share of the request's main steps."""
    by_package: Counter = Counter()
    by_step: Counter = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        if any(idle in frames[-1] for idle in IDLE):
            continue
        samples = int(count)
        total += samples
        leaf = frames[-1]
        package = leaf.rsplit("(", 1)[-1].split("/", 1)[0].split(".py", 1)[0] if "(" in leaf else leaf
        by_package[package] += samples
        for step, marker in STEPS.items():
            if any(marker in frame for frame in frames):
                by_step[step] += samples
    if not total:
        return {"by_package": [], "by_step": []}
    return {
        "by_package": [(name, round(100 * n / total, 1)) for name, n in by_package.most_common(10)],
        "by_step": [(step, round(100 * by_step[step] / total, 1)) for step in STEPS],
    }


# --- the report -----------------------------------------------------------------------------------


def versions(stack: Stack) -> dict:
    web = stack.container("web")
    return {
        "python": web.exec_run(["python", "--version"]).output.decode().strip(),
        "gunicorn": web.exec_run(["gunicorn", "--version"]).output.decode().strip(),
        "nginx": stack.container("nginx").exec_run(["nginx", "-v"]).output.decode().strip(),
        "postgres": stack.container("db").exec_run(["postgres", "--version"]).output.decode().strip(),
        "redis": stack.container("redis").exec_run(["redis-server", "--version"]).output.decode().split(" sha")[0],
        "wrk": wrk_version(),
        "oha": run([oha_binary(), "--version"]).stdout.strip() if oha_binary() else "not installed",
        "images": {s: stack.container(s).image.tags[0] for s in ("web", "nginx", "db", "redis")},
        "gunicorn_config": web.exec_run(
            [
                "python",
                "-c",
                "import runpy; s = runpy.run_path('gunicorn.conf.py'); "
                "print(s['workers'], s['worker_class'], s['threads'])",
            ]
        )
        .output.decode()
        .split()[-3:],
    }


def wrk_version() -> str:
    result = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (result.stdout + result.stderr).splitlines()[0].split(" Copyright")[0]


def machine() -> dict:
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


# gunicorn configurations the sweep compares: (worker class, workers, threads).
SWEEP = [("sync", 5, 1), ("gthread", 2, 4), ("gthread", 3, 4), ("gthread", 5, 4), ("gthread", 5, 8), ("gthread", 8, 2)]


def sweep(stack: Stack, rounds: int, seconds: float) -> list[dict]:
    """Each gunicorn configuration in turn (web recreated with it), the same scenarios each time."""
    rows = []
    original = stack.env_file.read_text()
    try:
        for worker_class, workers, threads in SWEEP:
            stack.env_file.write_text(
                original + f"GUNICORN_WORKER_CLASS={worker_class}\nGUNICORN_WORKERS={workers}\n"
                f"GUNICORN_THREADS={threads}\n"
            )
            result = stack.compose("up", "-d", "--force-recreate", "--no-deps", "--wait", "web")
            if result.returncode != 0:
                raise SystemExit(f"bench: web did not start with {worker_class} {workers}x{threads}: {result.stderr}")
            token = login(stack, f"sweep-{time.time_ns()}@bench.example")["access_token"]
            bare = Scenario("bare", f"{stack.https}/api/healthz")
            direct = Scenario("direct", f"{stack.direct}/api/healthz")
            protected = Scenario(
                "protected", f"{stack.https}/api/users/me", headers=(f"Authorization: Bearer {token}",)
            )
            wrk(bare, 2)
            idle = memory(stack)
            runs = {name: [] for name in ("bare", "direct", "protected")}
            for _ in range(rounds):
                for name, scenario in (("bare", bare), ("direct", direct), ("protected", protected)):
                    runs[name].append(wrk(scenario, seconds))
            row = {"config": f"{worker_class} {workers}×{threads}", "memory_mib": idle["container_mib"]}
            for name, measured in runs.items():
                row[f"{name}_rps"] = round(statistics.median(r.rps for r in measured))
                row[f"{name}_p99_ms"] = round(statistics.median(r.p99_ms for r in measured), 1)
                row[f"{name}_failures"] = sum(r.failures for r in measured)
            log(f"  {row}")
            rows.append(row)
    finally:
        stack.env_file.write_text(original)
    return rows


def render_sweep(rows: list[dict], rounds: int, seconds: float) -> str:
    lines = [
        "# gunicorn worker sweep",
        "",
        f"Written by `make bench-sweep` on {machine()['cores']} cores: the production stack with web recreated for each"
        f" configuration; medians of {rounds} runs of {seconds:g} s at {CONNECTIONS} connections (wrk pinned to CPU"
        f" {LOADGEN_CPU}). The defaults in `services/web/gunicorn.conf.py` come from this table.",
        "",
        "| worker class, workers × threads | bare via nginx req/s | bare on gunicorn req/s | protected via nginx req/s"
        " | protected ÷ bare | nginx ÷ direct | p99 protected ms (wrk) | web idle MiB | failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['config']} | {row['bare_rps']:,} | {row['direct_rps']:,} | {row['protected_rps']:,} |"
            f" {row['protected_rps'] / row['bare_rps']:.2f} | {row['bare_rps'] / row['direct_rps']:.2f} |"
            f" {row['protected_p99_ms']} | {row['memory_mib']} |"
            f" {row['bare_failures'] + row['direct_failures'] + row['protected_failures']} |"
        )
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--report", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--sweep", action="store_true", help="compare gunicorn configurations instead")
    parser.add_argument("--render", action="store_true", help="only rewrite the report from its .json")
    args = parser.parse_args()
    if args.render:
        args.report.write_text(render(json.loads(args.report.with_suffix(".json").read_text())))
        return
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing (`make bench-tools` installs it)")
    if not oha_binary():
        raise SystemExit("bench: oha is missing (`make bench-tools` builds it)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="flask-stack-bench-") as home:
        stack = Stack(Path(home))
        stack.up()
        try:
            if args.sweep:
                rows = sweep(stack, args.rounds, args.seconds)
                report = args.report.with_name("benchmarks-workers.md")
                report.write_text(render_sweep(rows, args.rounds, args.seconds))
                log(f"wrote {report} in {round(time.monotonic() - started)} s")
                return
            results = measure(stack, args.rounds, args.seconds)
        finally:
            stack.down()
    results["wall_seconds"] = round(time.monotonic() - started)
    results["command"] = " ".join(["bench/run.py", *sys.argv[1:]])
    args.report.parent.mkdir(exist_ok=True)
    args.report.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    args.report.write_text(render(results))
    log(f"wrote {args.report} in {results['wall_seconds']} s")


def measure(stack: Stack, rounds: int, seconds: float) -> dict:
    index = requests.get(stack.https + "/", verify=False, timeout=10).text
    asset = re.search(r'href="(/assets/favicon\.[0-9a-f]+\.svg)"', index)[1]  # the smallest hashed asset
    asset_bytes = len(requests.get(stack.https + asset, verify=False, timeout=10).content)
    token = login(stack, "bench@bench.example")["access_token"]
    body = json.dumps({"email": "bench@bench.example", "password": PASSWORD})
    s = {
        "ceiling": Scenario("nginx fixed 200 (HTTPS)", f"{stack.https}/edge-health"),
        "ceiling_http": Scenario("nginx fixed 200 (plain HTTP)", f"http://localhost:{stack.http_port}/edge-health"),
        "asset": Scenario(f"small hashed asset ({asset_bytes} B)", f"{stack.https}{asset}"),
        "index": Scenario("index.html", f"{stack.https}/"),
        "bare": Scenario("bare API through nginx", f"{stack.https}/api/healthz"),
        "bare_direct": Scenario("bare API on gunicorn", f"{stack.direct}/api/healthz"),
        "protected": Scenario(
            "protected API through nginx", f"{stack.https}/api/users/me", headers=(f"Authorization: Bearer {token}",)
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
    results: dict = {"machine": machine(), "versions": versions(stack), "rounds": rounds, "seconds": seconds}
    results["memory_idle"] = memory(stack)
    results["containers_idle_mib"] = all_container_memory(stack)
    log("warming up")
    for scenario in (s["bare"], s["protected"], s["asset"]):
        wrk(scenario, 2)

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
    log("the API: bare through nginx, bare on gunicorn, protected through nginx, bare during a login flood")
    api, floods = rounds_of(
        [
            Step("bare", s["bare"]),
            Step("bare_direct", s["bare_direct"]),
            Step("protected", s["protected"]),
            Step("bare_flood", s["bare"], during=s["login"]),
        ],
        rounds,
        seconds,
    )
    runs = {**edge, **api}
    names = {**{key: sc.name for key, sc in s.items()}, "bare_flood": "bare API through nginx during a login flood"}
    results["pairs"] = {key: paired(runs, names, a, b) for key, (a, b) in PAIRS.items()}
    results["runs"] = {key: runs_summary(names[key], measured) for key, measured in runs.items()}
    results["login_flood"] = {"login_rps": statistics.median(r.rps for r in floods)}

    log("login on gunicorn")
    login_run = wrk(s["login"], seconds + 4)
    results["login"] = {**run_summary(login_run), "argon2": argon2_cost_ms(stack)}

    log("tail latency at a fixed rate (oha, latency-corrected)")
    results["fixed_rate"] = {}
    for key in ("ceiling", "asset", "bare", "protected"):
        # Half of what wrk measured, but no more than one oha thread drives with TLS, or the tail
        # measured would be the load generator's.
        rate = min(FIXED_RATE_CAP, max(50, int(statistics.median(r.rps for r in runs[key]) * 0.5)))
        results["fixed_rate"][key] = {"name": s[key].name, **oha_fixed_rate(s[key], rate, math.ceil(seconds))}

    log("refresh rotation under concurrency")
    results["refresh"] = refresh_under_concurrency(stack, seconds)
    log("profiling the protected endpoint (py-spy)")
    results["profile"] = profile_protected(stack, s["protected"], math.ceil(seconds) + 2)
    results["memory_loaded"] = memory(stack)
    results["containers_loaded_mib"] = all_container_memory(stack)
    results["scenarios"] = {key: sc.name for key, sc in s.items()}
    return results


def run_summary(r: Run) -> dict:
    return {
        "rps": round(r.rps, 1),
        "p50_ms": round(r.p50_ms, 2),
        "p99_ms": round(r.p99_ms, 2),
        "requests": r.requests,
        "failures": r.failures,
    }


def runs_summary(name: str, runs: list[Run]) -> dict:
    return {
        "name": name,
        "rps_median": round(statistics.median(r.rps for r in runs), 1),
        "p50_ms_median": round(statistics.median(r.p50_ms for r in runs), 2),
        "p99_ms_median": round(statistics.median(r.p99_ms for r in runs), 2),
        "requests": sum(r.requests for r in runs),
        "failures": sum(r.failures for r in runs),
    }


def paired(runs: dict[str, list[Run]], names: dict[str, str], a: str, b: str) -> dict:
    ratios = [x.rps / y.rps for x, y in zip(runs[a], runs[b], strict=True)]
    return {
        "a": names[a],
        "b": names[b],
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_min": round(min(ratios), 3),
        "ratio_max": round(max(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
    }


# The ratios reported, each A ÷ B from runs in the same rounds.
PAIRS = {
    "protected_vs_bare": ("protected", "bare"),
    "nginx_vs_direct": ("bare", "bare_direct"),
    "static_vs_ceiling": ("asset", "ceiling"),
    "bare_during_login_flood": ("bare_flood", "bare"),
    "index_vs_ceiling": ("index", "ceiling"),
    "https_vs_http": ("ceiling", "ceiling_http"),
}


TARGETS = [
    ("protected_vs_bare", "Protected ÷ bare API, both through nginx", 0.50),
    ("nginx_vs_direct", "Bare API through nginx ÷ directly on gunicorn", 0.85),
    ("static_vs_ceiling", "Hashed asset ÷ nginx's fixed-200 ceiling", 0.90),
    ("bare_during_login_flood", "Bare API during a login flood ÷ alone", 0.50),
    ("index_vs_ceiling", "index.html ÷ nginx's fixed-200 ceiling", None),
    ("https_vs_http", "HTTPS ÷ plain HTTP (nginx fixed 200, kept-alive connections)", None),
]


def render(r: dict) -> str:
    m, v = r["machine"], r["versions"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` ({r['command']}, {r['wall_seconds']} s). Every ratio is the median of {r['rounds']}"
        f" paired runs (A then B, {r['seconds']:g} s each, {CONNECTIONS} connections, wrk pinned to CPU {LOADGEN_CPU}),"
        " measured side by side in one run on the production compose stack.",
        "",
        f"**Machine**: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, Linux {m['kernel']},"
        f" Docker {m['docker']}.",
        f"**Versions**: {v['python']}, {v['gunicorn']} ({v['gunicorn_config'][0]} {v['gunicorn_config'][1]} workers"
        f" × {v['gunicorn_config'][2]} threads), {v['nginx']}, {v['postgres']}, {v['redis']};"
        f" load: {v['wrk']}, {v['oha']}.",
        f"**Images**: {', '.join(f'{k} `{t}`' for k, t in v['images'].items())}.",
        "",
        "## Targets",
        "",
        "| ratio | goal | measured (median) | range | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, title, goal in TARGETS:
        p = r["pairs"][key]
        met = "—" if goal is None else ("yes" if p["ratio_median"] >= goal else "**no**")
        lines.append(
            f"| {title} | {f'≥ {goal:.2f}' if goal else 'reported'} | {p['ratio_median']:.2f} |"
            f" {p['ratio_min']:.2f}–{p['ratio_max']:.2f} | {met} |"
        )
    lines += [
        "",
        "## Throughput (wrk)",
        "",
        "| scenario | req/s (median) | p50 ms | p99 ms (wrk) | requests | failed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for side in r["runs"].values():
        lines.append(
            f"| {side['name']} | {side['rps_median']:,.0f} | {side['p50_ms_median']:.2f} |"
            f" {side['p99_ms_median']:.2f} | {side['requests']:,} | {side['failures']} |"
        )
    lines += [
        "",
        "Failed means any connect, read, write or timeout error or a status of 400 or more.",
        "",
        "## Tail latency at a fixed rate (oha, latency-corrected)",
        "",
        "Each read scenario at half its measured throughput (at most 2,000 req/s, what one oha thread drives"
        " over TLS here); latency counts from when each request was due,"
        " so a stall shows in the tail instead of hiding it (wrk's percentiles suffer from coordinated omission).",
        "",
        "| scenario | rate (req/s) | p50 ms | p99 ms | requests | non-2xx or errors |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for fixed in r["fixed_rate"].values():
        lines.append(
            f"| {fixed['name']} | {fixed['rate']} | {fixed['p50_ms']:.2f} | {fixed['p99_ms']:.2f} |"
            f" {fixed['requests']:,} | {fixed['non_2xx']} |"
        )
    login, argon = r["login"], r["login"]["argon2"]
    refresh = r["refresh"]
    lines += [
        "",
        "## Login and Argon2id",
        "",
        f"Login straight to gunicorn with 8 connections: **{login['rps']:.1f} logins/s**, p50 {login['p50_ms']:.0f} ms,"
        f" p99 {login['p99_ms']:.0f} ms, {login['failures']} failed. One Argon2id verification (t={argon['time_cost']},"
        f" m={argon['memory_kib']} KiB, p={argon['parallelism']}) costs **{argon['verify_ms']:.1f} ms** of CPU in the"
        " web container: logins are dominated by it by design. During a login flood"
        f" ({r['login_flood']['login_rps']:.1f} logins/s) the bare API kept"
        f" {r['pairs']['bare_during_login_flood']['ratio_median']:.2f} of its throughput.",
        "",
        "## Refresh rotation under concurrency",
        "",
        f"{refresh['users']} users rotating their own refresh tokens at once, straight to gunicorn:"
        f" {refresh['rotations']:,} rotations ({refresh['rotations_per_s']:.0f}/s), {refresh['refused']} refused;"
        f" afterwards {refresh['chains_alive_after']} of {refresh['users']} chains still rotate (no family lost)."
        f" One refresh token presented 16 times at once: {refresh['stampede_successes']} success,"
        f" {refresh['stampede_refused']} refused (no family duplicated).",
        "",
        "## Memory",
        "",
        "| | idle | after the load |",
        "| --- | --- | --- |",
        f"| web container (`docker stats`, without page cache) | {r['memory_idle']['container_mib']} MiB |"
        f" {r['memory_loaded']['container_mib']} MiB |",
        f"| gunicorn workers | {r['memory_idle']['workers']} | {r['memory_loaded']['workers']} |",
        f"| per worker, RSS (median) | {r['memory_idle']['worker_rss_mib']} MiB |"
        f" {r['memory_loaded']['worker_rss_mib']} MiB |",
        f"| per worker, PSS: shared pages split (median) | {r['memory_idle']['worker_pss_mib']} MiB |"
        f" {r['memory_loaded']['worker_pss_mib']} MiB |",
        f"| gunicorn master, RSS | {r['memory_idle']['master_rss_mib']} MiB |"
        f" {r['memory_loaded']['master_rss_mib']} MiB |",
    ]
    for service in r["containers_idle_mib"]:
        lines.append(
            f"| {service} container | {r['containers_idle_mib'][service]} MiB |"
            f" {r['containers_loaded_mib'][service]} MiB |"
        )
    lines += [
        "",
        "## Where the protected endpoint spends its time (py-spy)",
        "",
        "Samples of every gunicorn worker while `GET /api/users/me` is under load (threads waiting for work"
        " left out). The main steps of a request, inclusive:",
        "",
        "| step | share of busy samples |",
        "| --- | --- |",
        *[f"| {name} | {share}% |" for name, share in r["profile"]["by_step"]],
        "",
        "By the package the sampled code was in (self time):",
        "",
        "| package | share of busy samples |",
        "| --- | --- |",
        *[f"| {name} | {share}% |" for name, share in r["profile"]["by_package"]],
    ]
    lines += [
        "",
        "## Reproduce",
        "",
        "The gunicorn defaults come from `make bench-sweep`: see [benchmarks-workers.md](benchmarks-workers.md).",
        "",
        "```console",
        "make up      # builds the images",
        "make bench   # this report",
        "```",
        "",
        "The raw figures of this run are in `docs/benchmarks.json`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
