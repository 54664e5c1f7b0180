#!/usr/bin/env bash
# The production stack on Docker Swarm (make swarm, swarm-deploy, swarm-down, swarm-ps).
#
#   swarm.sh deploy   build the images, then `docker stack deploy` docker-compose.prod.yml with
#                     compose/swarm.yml; a single-node swarm is made first if the engine is in none
#   swarm.sh init     only that swarm (for nodes to join before the first deploy)
#   swarm.sh roll [IMAGE]
#                     roll web out to IMAGE (default: built from the checked-out commit), one task
#                     at a time (start-first, health-gated, rolled back by Swarm if a new task fails)
#   swarm.sh down     remove the stack and wait until its containers and networks are gone
#   swarm.sh ps       the services, their replicas, and the running tasks
#   swarm.sh wait     until every service runs its tasks; gives up, with the cause, once one keeps failing
#   swarm.sh registry [stop]
#                     an image registry on this host (REGISTRY_PUBLISH, default 127.0.0.1:5000):
#                     registry:2, or a stand-in built from Debian's docker-registry where nothing
#                     can be pulled; `stop` removes it (its volume stays)
#
# STACK (default flask-stack-prod, the compose project's name, so a host moving from `make prod`
# keeps its volumes), PROD_ENV_FILE (default .env.d/.env.production) and ENV_FILE (default .env:
# the machine's settings, where the deployed WEB_TAG is recorded too) choose what and where.
# SWARM_ADVERTISE_ADDR and SWARM_ADDR_POOL (default: the first 10.N.0.0/16 no network here uses)
# are for the swarm this script makes when the engine is in none.
# EXTRA_COMPOSE_FILES as for `make prod` (compose/external-data.yml: Postgres and Redis elsewhere).
# REGISTRY (host:port) pushes every image of the stack there and deploys them from there: every
# node of a swarm of more than one must be able to pull them (see docs/scaling.md).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
stack=${STACK:-flask-stack-prod}
prod_env=${PROD_ENV_FILE:-.env.d/.env.production}
env_file=${ENV_FILE:-.env}
registry=${REGISTRY:-}

say() { printf '[swarm] %s\n' "$*"; }
absolute() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }

# EXTRA_COMPOSE_FILES (compose/external-data.yml) go between the production file and the swarm
# overlay, as under `make prod`: the swarm overlay has the last word on what Swarm needs.
compose() {
  local env_files=() files=(-f docker-compose.prod.yml) extra
  [ -f "$env_file" ] && env_files+=(--env-file "$env_file")
  for extra in ${EXTRA_COMPOSE_FILES:-}; do files+=(-f "$extra"); done
  docker compose -p "$stack" "${env_files[@]}" --env-file "$prod_env" "${files[@]}" -f compose/swarm.yml "$@"
}

ensure_swarm() {
  if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = active ]; then return; fi
  local address=${SWARM_ADVERTISE_ADDR:-127.0.0.1}
  say "this engine is in no swarm: initialising a single-node swarm advertised on $address"
  say "(other nodes can join only if SWARM_ADVERTISE_ADDR is an address they reach; 'docker swarm leave --force' undoes it)"
  local pool=${SWARM_ADDR_POOL:-$(free_address_pool)}
  say "its overlay networks get addresses from $pool"
  docker swarm init --advertise-addr "$address" --default-addr-pool "$pool" --default-addr-pool-mask-length 24 >/dev/null
}

# The first 10.N.0.0/16 that no network on this engine uses. Swarm's default pool (10.0.0.0/8,
# from 10.0.0.0/24 on) knows nothing of networks an earlier swarm left behind when it was not left
# cleanly, nor of bridges in 10/8: a network given an address range one of those holds fails every
# task on it ("Pool overlaps with other one on this address space").
free_address_pool() {
  docker network ls -q | xargs docker network inspect --format '{{ range .IPAM.Config }}{{ .Subnet }} {{ end }}' \
    | python3 -c '
import ipaddress, sys
taken = [ipaddress.ip_network(subnet, strict=False) for subnet in sys.stdin.read().split() if "." in subnet]
print(next(str(pool) for n in range(256) if not any((pool := ipaddress.ip_network(f"10.{n}.0.0/16")).overlaps(t) for t in taken)))'
}

# Postgres and Redis run where their volumes are, the edge where clients reach it: nodes labelled
# flask-stack.data and flask-stack.edge. With no node labelled yet, this one gets the label.
ensure_label() {
  local label=$1 labelled
  labelled=$(docker node ls -q | xargs docker node inspect \
    --format "{{ if index .Spec.Labels \"$label\" }}{{ .Description.Hostname }}{{ end }}" | grep -v '^$' || true)
  if [ -z "$labelled" ]; then
    say "no node is labelled $label: labelling this one ($(docker info --format '{{.Name}}'))"
    docker node update --label-add "$label=true" "$(docker info --format '{{.Swarm.NodeID}}')" >/dev/null
  fi
}

# WEB_TAG as compose reads it: the shell's, else the env file's, else latest.
web_tag() {
  local tag=${WEB_TAG:-}
  [ -n "$tag" ] || tag=$(sed -n 's/^WEB_TAG=//p' "$env_file" 2>/dev/null | tail -n 1)
  echo "${tag:-latest}"
}

# The next `make swarm` deploys what is live now.
record_web_tag() {
  touch "$env_file"
  if grep -q '^WEB_TAG=' "$env_file"; then sed -i "s/^WEB_TAG=.*/WEB_TAG=$1/" "$env_file"; else echo "WEB_TAG=$1" >> "$env_file"; fi
}

# The images the stack runs: the local ones, or (REGISTRY set) the same pushed to the registry.
image_name() {
  if [ -n "$registry" ]; then echo "$registry/$1"; else echo "$1"; fi
}

push_to_registry() {
  [ -n "$registry" ] || return 0
  local image
  for image in "$@"; do
    [ -n "$image" ] || continue
    docker tag "$image" "$registry/$image"
    docker push -q "$registry/$image" >/dev/null
    say "pushed $registry/$image"
  done
}

stack_file() {
  compose config --format json | python3 compose/scripts/swarm-stack.py "$stack" "$registry"
}

deploy() {
  [ -f "$prod_env" ] || { echo "$prod_env is missing: run 'make secrets' and review it" >&2; exit 1; }
  # The deployer (push-to-deploy) builds with the same env files, by absolute path.
  SWARM_ENV_FILES="$(absolute "$env_file") $(absolute "$prod_env")"
  export SWARM_ENV_FILES
  ensure_swarm
  ensure_label flask-stack.data
  ensure_label flask-stack.edge
  WEB_TAG=$(web_tag)
  export WEB_TAG
  say "building the images (tag $WEB_TAG)"
  APP_REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown) compose build --quiet
  # shellcheck disable=SC2046  # one image name per line
  push_to_registry $(compose config --images)
  # Bind-mounted folders must exist on the node: Swarm does not make them.
  compose config --format json | python3 -c '
import json, os, sys
for service in json.load(sys.stdin)["services"].values():
    for volume in service.get("volumes", []):
        source = volume.get("source", "")
        if volume.get("type") == "bind" and volume.get("bind", {}).get("create_host_path") and not os.path.exists(source):
            os.makedirs(source)'
  say "deploying stack $stack"
  stack_file | docker stack deploy --resolve-image never --prune --detach=true -c - "$stack"
  # Before waiting: a service that needs its groups (the deployer) cannot start without them.
  add_groups
  wait_converged
  say "stack $stack is up: make swarm-ps"
}

# Until every service of the stack runs as many tasks as it should (at most 10 minutes), giving up
# sooner, with the cause, once a service's tasks have failed FAILED_TASKS times since the deploy
# began (a task that cannot start, a secret that does not match its volume: retrying won't help).
wait_converged() {
  local waited=0 replicas since
  since=$(date -u +%s)
  while :; do
    replicas=$(docker service ls --filter "label=com.docker.stack.namespace=$stack" --format '{{.Replicas}}')
    if [ -n "$replicas" ] && ! grep -Ev '^([0-9]+)/\1( |$)' <<<"$replicas" >/dev/null; then return; fi
    if [ $((waited % 5)) = 0 ] && [ -n "$(failing_services "$since")" ]; then
      say "giving up: tasks of $(failing_services "$since" | tr '\n' ' ')failed ${FAILED_TASKS:-3} times or more"
      compose/scripts/explain-failure.sh swarm "$stack"
      exit 1
    fi
    if [ "$waited" -ge 600 ]; then
      say "the stack has not converged after 10 minutes:"
      docker stack services "$stack" >&2
      compose/scripts/explain-failure.sh swarm "$stack"
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

# The stack's services with FAILED_TASKS (3) or more tasks failed or rejected since $1 (epoch seconds).
failing_services() {
  local service tasks
  for service in $(docker service ls -q --filter "label=com.docker.stack.namespace=$stack"); do
    tasks=$(docker service ps -q "$service" 2>/dev/null) || continue
    [ -n "$tasks" ] || continue
    # shellcheck disable=SC2086  # one task id per word
    docker inspect $tasks 2>/dev/null | python3 -c '
import json, sys
from datetime import datetime
since, wanted = float(sys.argv[1]), int(sys.argv[2])
tasks = json.load(sys.stdin)
def at(stamp):  # RFC 3339 with nanoseconds: keep what fromisoformat reads
    head, _, rest = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp()
failed = [t for t in tasks if t["Status"]["State"] in ("failed", "rejected") and at(t["Status"]["Timestamp"]) >= since]
if len(failed) >= wanted:
    print(tasks[0]["ServiceID"])' "$1" "${FAILED_TASKS:-3}" |
      xargs -r docker service inspect --format '{{.Spec.Name}}'
  done
}

# group_add, which a stack file cannot hold (the deployer: the Docker socket's group, the ledger's).
add_groups() {
  local service groups group args
  while read -r service groups; do
    args=()
    for group in $groups; do args+=(--group-add "$group"); done
    docker service update --detach --quiet "${args[@]}" "${stack}_$service" >/dev/null
    say "$service runs in groups $groups"
  done < <(compose config --format json | python3 compose/scripts/swarm-stack.py --groups)
}

roll() {
  local image=${1:-} service="${stack}_web" state sha
  if [ -z "$image" ]; then
    sha=$(git rev-parse HEAD)
    say "building flask-stack/web:$sha"
    WEB_TAG=$sha APP_REVISION=$sha compose build --quiet web
    image=flask-stack/web:$sha
  fi
  push_to_registry "$image"
  image=$(image_name "$image")
  if [ "$(docker service inspect --format '{{ .Spec.TaskTemplate.ContainerSpec.Image }}' "$service")" = "$image" ]; then
    say "$service runs $image already"
    return
  fi
  # The update is asynchronous: it has begun when its start time differs from the last update's.
  local update_status='{{ if .UpdateStatus }}{{ .UpdateStatus.State }} {{ .UpdateStatus.StartedAt }}{{ end }}'
  local previous started waited=0
  previous=$(docker service inspect --format "$update_status" "$service")
  previous=${previous#* }
  say "rolling $service to $image, one task at a time"
  docker service update --detach --quiet --no-resolve-image --image "$image" "$service" >/dev/null
  # Swarm replaces the tasks and, if a new one fails, rolls back: the update's state says which.
  while :; do
    read -r state started < <(docker service inspect --format "$update_status" "$service") || true
    if [ -n "${started:-}" ] && [ "$started" != "$previous" ]; then
      case "$state" in updating | rollback_started) ;; *) break ;; esac
    fi
    if [ "$waited" -ge 900 ]; then say "the update has not finished after 15 minutes (${state:-not begun})"; exit 1; fi
    sleep 1
    waited=$((waited + 1))
  done
  case "$state" in
    completed)
      case "$image" in */flask-stack/web:* | flask-stack/web:*) record_web_tag "${image##*:}" ;; esac
      say "$service runs $image"
      # The background jobs run the web image too: Swarm updates them by their own update_config.
      local jobs
      for jobs in "${stack}_worker" "${stack}_scheduler"; do
        docker service inspect "$jobs" >/dev/null 2>&1 || continue
        docker service update --detach --quiet --no-resolve-image --image "$image" "$jobs" >/dev/null
        say "$jobs -> $image"
      done
      ;;
    *)
      say "the update did not complete ($state): $(docker service inspect --format '{{ .UpdateStatus.Message }}' "$service")"
      compose/scripts/explain-failure.sh swarm "$stack"
      exit 1
      ;;
  esac
}

down() {
  say "removing stack $stack"
  docker stack rm "$stack" >/dev/null 2>&1 || true
  local waited=0
  while [ -n "$(docker ps -aq --filter "label=com.docker.stack.namespace=$stack")$(docker network ls -q --filter "label=com.docker.stack.namespace=$stack")" ]; do
    if [ "$waited" -ge 360 ]; then say "stack $stack still has containers or networks after 3 minutes"; exit 1; fi
    sleep 0.5
    waited=$((waited + 1))
  done
  say "stack $stack is gone (its volumes stay)"
}

registry() {
  local name=${REGISTRY_NAME:-flask-stack-registry} image=registry:2
  if [ "${1:-}" = stop ]; then
    docker rm -f "$name" >/dev/null 2>&1 || true
    say "registry $name removed (volume $name kept)"
    return
  fi
  if ! docker image inspect "$image" >/dev/null 2>&1 && ! docker pull -q "$image" >/dev/null 2>&1; then
    image=${LOCAL_IMAGE_PREFIX:-flask-stack-local}/registry:2
    compose/local-images/build.sh registry:2
  fi
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run -d --name "$name" --restart unless-stopped -p "${REGISTRY_PUBLISH:-127.0.0.1:5000}:5000" \
    -v "$name:/var/lib/registry" --read-only --cap-drop ALL --security-opt no-new-privileges "$image" >/dev/null
  say "registry $name ($image) on ${REGISTRY_PUBLISH:-127.0.0.1:5000}: REGISTRY=${REGISTRY_PUBLISH:-127.0.0.1:5000} make swarm"
}

ps() {
  docker stack services "$stack"
  echo
  docker stack ps --filter desired-state=running --format 'table {{.Name}}\t{{.Node}}\t{{.CurrentState}}\t{{.Image}}' "$stack"
}

case "${1:-}" in
  deploy) deploy ;;
  init) ensure_swarm ;;
  roll) roll "${2:-}" ;;
  down) down ;;
  ps) ps ;;
  wait) wait_converged ;;
  registry) registry "${2:-}" ;;
  *) echo "usage: swarm.sh deploy | init | roll [IMAGE] | down | ps | wait | registry [stop]" >&2; exit 2 ;;
esac
