#!/usr/bin/env bash
# Remove every container (running or not, one-off `run` containers included) and network that
# carries a compose project's label; with --volumes, its volumes too. Works without the compose
# file, so it also cleans up after a project whose file or settings are gone. A container is the
# project's only if compose made it (its oneoff label): an image compose built carries the project's
# labels too, and so does every container run from it elsewhere (a swarm's tasks, a `docker run`).
set -euo pipefail

volumes=0
if [ "${1:-}" = "--volumes" ]; then volumes=1; shift; fi
project=${1:?usage: remove-project.sh [--volumes] PROJECT}
label="label=com.docker.compose.project=$project"

made_by_compose="label=com.docker.compose.oneoff"

mapfile -t containers < <(docker ps -aq --filter "$label" --filter "$made_by_compose")
if [ "${#containers[@]}" -gt 0 ]; then
  docker rm -f "${containers[@]}" >/dev/null
  echo "[kill] removed ${#containers[@]} container(s) of $project"
fi
mapfile -t networks < <(docker network ls -q --filter "$label")
if [ "${#networks[@]}" -gt 0 ]; then
  docker network rm "${networks[@]}" >/dev/null
  echo "[kill] removed ${#networks[@]} network(s) of $project"
fi
if [ "$volumes" = 1 ]; then
  mapfile -t vols < <(docker volume ls -q --filter "$label")
  if [ "${#vols[@]}" -gt 0 ]; then
    docker volume rm "${vols[@]}" >/dev/null
    echo "[kill] removed volume(s): ${vols[*]}"
  fi
fi
left=$(docker ps -q --filter "$label" --filter "$made_by_compose" | wc -l)
echo "[kill] containers of $project still running: $left"
[ "$left" = 0 ]
