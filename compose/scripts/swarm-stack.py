#!/usr/bin/env python3
"""Turn `docker compose config --format json` (docker-compose.prod.yml plus compose/swarm.yml, every
value filled in) into a stack file for `docker stack deploy -c -`, on stdout.

    swarm-stack.py STACK [REGISTRY] < compose-config.json > stack.json
    swarm-stack.py --groups < compose-config.json      "SERVICE GROUP..." per line

With REGISTRY (host:port), every image is named as pushed there, so every node pulls the same.
A stack file cannot add a service's user to groups (compose's group_add: the deployer needs the
Docker socket's group): --groups lists them, and `make swarm` adds them with `docker service update`.

What Swarm takes differently, and what this does about it:
- no build, restart, depends_on, profiles, security_opt or group_add keys (Swarm restarts by
  restart_policy; no-new-privileges is the daemon's "no-new-privileges": true under Swarm; groups
  are added after the deploy, see --groups): dropped;
- published ports go through the routing mesh unless mode is host: mode host, on the node's own
  interfaces (a host address cannot be chosen: firewall the node instead);
- a tmpfs cannot be given a mode or an owner: it becomes an anonymous volume, filled from the image;
- a file bind-mounted read-only from the repository (an init script) would have to exist on every
  node: it becomes a Swarm config;
- secrets and configs cannot change under the same name: each is named after its content's digest,
  so a changed secret file is a new secret the services move to;
- networks are overlay networks; volume and network names come from the stack's name.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

DROPPED_SERVICE_KEYS = (
    "build",
    "restart",
    "depends_on",
    "profiles",
    "security_opt",
    "container_name",
    "pull_policy",
    "group_add",
)


def content_name(stack: str, key: str, path: str) -> str:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    return f"{stack}_{key}_{digest}"


def scratch_mount(tmpfs: str) -> dict[str, Any]:
    """A tmpfs ("/run/nginx:uid=101,gid=101") as an anonymous volume at the same place. A stack file
    cannot give a tmpfs a mode or an owner (they come out root's, 0755), while a new volume is
    filled from the image, owners and modes included: the unprivileged user can write there, and the
    root file system stays read-only. One per task, removed with it."""
    return {"type": "volume", "target": tmpfs.partition(":")[0]}


def swarm_service(stack: str, service: dict[str, Any], configs: dict[str, Any], registry: str) -> dict[str, Any]:
    service = {key: value for key, value in service.items() if key not in DROPPED_SERVICE_KEYS and value is not None}
    if registry:
        service["image"] = f"{registry}/{service['image']}"
    service["ports"] = [
        {"mode": "host", "target": port["target"], "published": int(port["published"]), "protocol": "tcp"}
        for port in service.get("ports", [])
    ]
    if not service["ports"]:
        del service["ports"]
    mounts: list[dict[str, Any]] = []
    for volume in service.get("volumes", []):
        source = volume.get("source", "")
        if volume.get("type") == "bind" and volume.get("read_only") and Path(source).is_file():
            key = Path(source).name.replace(".", "_")
            configs[key] = {"file": source, "name": content_name(stack, key, source)}
            service.setdefault("configs", []).append({"source": key, "target": volume["target"], "mode": 0o444})
            continue
        volume.pop("bind", None)  # compose's bind options (create_host_path) mean nothing to Swarm
        mounts.append(volume)
    mounts += [scratch_mount(spec) for spec in service.pop("tmpfs", [])]
    if mounts:
        service["volumes"] = mounts
    else:
        service.pop("volumes", None)
    limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
    if "cpus" in limits:
        limits["cpus"] = str(limits["cpus"])
    return service


def swarm_stack(stack: str, config: dict[str, Any], registry: str = "") -> dict[str, Any]:
    configs: dict[str, Any] = {}
    services = {name: swarm_service(stack, service, configs, registry) for name, service in config["services"].items()}
    secrets = {
        key: {"file": secret["file"], "name": content_name(stack, key, secret["file"])}
        for key, secret in config.get("secrets", {}).items()
    }
    networks = {
        key: {"driver": "overlay", **({"internal": True} if network.get("internal") else {})}
        for key, network in config.get("networks", {}).items()
        if key != "default"
    }
    volumes: dict[str, dict[str, Any]] = {key: {} for key in config.get("volumes", {})}
    return {
        "version": "3.9",
        "services": services,
        "networks": networks,
        "volumes": volumes,
        "secrets": secrets,
        "configs": configs,
    }


def group_additions(config: dict[str, Any]) -> dict[str, list[str]]:
    """The groups each service's user is added to (group_add), which a stack file cannot say."""
    return {name: [str(g) for g in s["group_add"]] for name, s in config["services"].items() if s.get("group_add")}


def main() -> None:
    if sys.argv[1:] == ["--groups"]:
        for name, groups in group_additions(json.load(sys.stdin)).items():
            print(name, *groups)
        return
    if len(sys.argv) not in (2, 3):
        raise SystemExit("usage: swarm-stack.py STACK [REGISTRY] < compose-config.json | --groups < ...")
    registry = sys.argv[2] if len(sys.argv) == 3 else ""
    json.dump(swarm_stack(sys.argv[1], json.load(sys.stdin), registry), sys.stdout, indent=2)


if __name__ == "__main__":
    main()
