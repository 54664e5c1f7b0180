"""docs/benchmarks.md from a run's figures (also `python -m bench --render` from the .json)."""

from __future__ import annotations

import statistics
from typing import Any

from bench.loadgen import CONNECTIONS, SPLITS
from bench.stack import LOADGEN_CPU

# Each ratio reported (bench/measures.py's PAIRS), its title, and the least it should be (None: reported only).
TARGETS = [
    ("protected_vs_bare_direct", "Protected ÷ bare API, both straight to gunicorn", 0.50),
    ("bare_vs_hello", "Bare API ÷ a hello-world Flask app, same gunicorn settings", 0.90),
    ("metrics_on_vs_off", "Protected API with metrics ÷ without, on gunicorn", 0.95),
    ("bounds_on_vs_off", "Admin listing (database queries) with the database bounds ÷ without, on gunicorn", 0.95),
    ("nginx_vs_direct", "Bare API through nginx over HTTPS ÷ straight to gunicorn", 0.85),
    ("nginx_plain_vs_direct", "Bare API through nginx over plain HTTP ÷ straight to gunicorn", None),
    ("protected_vs_bare", "Protected ÷ bare API, both through nginx", 0.50),
    ("static_vs_ceiling", "Hashed asset ÷ nginx's fixed-200 ceiling", 0.90),
    ("bare_during_login_flood", "Bare API during a login flood ÷ alone", 0.50),
    ("index_vs_ceiling", "index.html ÷ nginx's fixed-200 ceiling", None),
    ("https_vs_http", "HTTPS ÷ plain HTTP (nginx fixed 200, kept-alive connections)", None),
]


STABLE = 0.10  # a goal ratio of three runs in a row is within this share of their median


def stability(history: list[dict[str, Any]]) -> list[str]:
    """How far apart the last three runs' goal ratios are (docs/benchmarks-history.json)."""
    last = history[-3:]
    lines = ["", "## Run to run", ""]
    if len(last) < 3:
        return [*lines, f"{len(last)} run(s) recorded so far: three are compared once there are three.", ""]
    runs = ", ".join(f"{run['at']} at {run['commit']}" for run in last)
    lines += [
        f"The goal ratios of the last three runs ({runs}): each should stay within ±{STABLE:.0%} of their median.",
        "",
        "| ratio | runs | median | farthest from it | within ±10 % |",
        "| --- | --- | --- | --- | --- |",
    ]
    for key, title, goal in TARGETS:
        values = [run["ratios"].get(key) for run in last]
        if goal is None or None in values:
            continue
        middle = statistics.median(values)
        spread = max(abs(value - middle) for value in values) / middle
        lines.append(
            f"| {title} | {' · '.join(f'{value:.2f}' for value in values)} | {middle:.2f} | {spread:.1%} |"
            f" {'yes' if spread <= STABLE else '**no**'} |"
        )
    return lines


def framework_section(cost: dict[str, Any] | None) -> list[str]:
    """What the bare ÷ hello-world ratio is made of, from bench/framework_cost.py."""
    if not cost:
        return []
    return [
        "",
        "## What a bare request costs in the app (in-process, no gunicorn)",
        "",
        f"`GET /api/healthz` through the whole app: **{cost['bare_us']:.0f} µs** of CPU; the same answer from a"
        f" hello-world Flask view: **{cost['hello_us']:.0f} µs** (the best of three runs of 2,000 calls each, in the"
        " web container). What the app does beyond the view: a request id, its metrics, security and cache headers,"
        " the JSON-body check, and flask-smorest's response schema. Where the extra self time is, by package"
        " (cProfile, which slows everything in proportion):",
        "",
        "| where | extra µs per request (profiled) |",
        "| --- | --- |",
        *[f"| {name} | {us:.1f} |" for name, us in cost["extra_us_by_owner"]],
        "",
        "Taken out of the path so far (issue 16): the access log's write (a queue and one writer thread per"
        " worker: logging had been a quarter of the busy samples), Flask's cookie session (a signing serializer"
        " built per request, for a session nothing uses), Flask asking every hook on every request whether it is a"
        " coroutine, a UUID object per request id, and the metrics' label lookups (159 µs to 97 µs per bare"
        " request, measured this way outside the container). What is left is werkzeug's request and header"
        " objects, the metrics themselves (values in files the workers share, so the master can sum them), the"
        " response schema, and the request id and headers every answer carries: removing those would remove"
        " features. Throughput shows less of it than the CPU time does (see the metrics on ÷ off ratio), as"
        " gunicorn's own work per request is the larger part.",
    ]


def enqueue_section(cost: dict[str, Any] | None) -> list[str]:
    """What queuing a mail adds to a request, from bench/enqueue_cost.py."""
    if not cost:
        return []
    return [
        "",
        "## What queuing a mail costs a request (in-process, the stack's Postgres and Redis)",
        "",
        f"`POST /api/auth/password-reset` for an account that exists (its link mailed: rendered and queued in"
        f" Redis) took **{cost['mailed_ms']:.2f} ms**, for one that does not (the same token-store work)"
        f" **{cost['not_mailed_ms']:.2f} ms**, medians of {cost['rounds']} each, interleaved: the mail adds"
        f" **{cost['enqueue_ms']:.2f} ms** to the request. The worker sends it afterwards (docs/jobs.md).",
    ]


def render(r: dict[str, Any]) -> str:
    m, v = r["machine"], r["versions"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` ({r['command']}, {r['wall_seconds']} s). Every ratio is the median of {r['rounds']}"
        f" paired runs (A then B, B then A in the next round, {r['seconds']:g} s each as the best of {SPLITS} wrk runs"
        f" with fresh connections, {CONNECTIONS} connections,"
        f" wrk pinned to CPU {LOADGEN_CPU}), measured side by side in one run on the production compose stack."
        " The range is the lowest and highest single pair; the interval is where the median could have fallen"
        " (95 %, bootstrap over the pairs).",
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
        "| ratio | goal | measured (median) | 95 % interval | range | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key, title, goal in TARGETS:
        p = r["pairs"][key]
        met = "—" if goal is None else ("yes" if p["ratio_median"] >= goal else "**no**")
        lines.append(
            f"| {title} | {f'≥ {goal:.2f}' if goal else 'reported'} | {p['ratio_median']:.2f} |"
            f" {p['ratio_interval'][0]:.2f}–{p['ratio_interval'][1]:.2f} | {p['ratio_min']:.2f}–{p['ratio_max']:.2f} |"
            f" {met} |"
        )
    lines += stability(r.get("history", []))
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
    lines += framework_section(r.get("framework_cost"))
    lines += enqueue_section(r.get("enqueue_cost"))
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
