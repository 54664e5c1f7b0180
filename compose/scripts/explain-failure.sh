#!/usr/bin/env bash
# Why a stack did not come up: each service that is not running (healthy), its last log lines,
# and the likely way out for the causes met before. Called by `make prod` and compose/scripts/swarm.sh
# when they give up; exits 0 (what failed is the caller's to say).
#
#   explain-failure.sh compose PROJECT   the containers of a compose project
#   explain-failure.sh swarm STACK       the services of a Swarm stack
set -uo pipefail

mode=${1:?compose or swarm} name=${2:?the project or stack}
lines=${EXPLAIN_LOG_LINES:-15}
logs=""

say() { printf '[why] %s\n' "$*" >&2; }

show() {  # show TITLE TEXT: the text indented, and kept for the hints below
  say "$1"
  printf '    %s\n' "${2//$'\n'/$'\n'    }" >&2
  logs+=$2$'\n'
}

if [ "$mode" = compose ]; then
  while IFS=$'\t' read -r container status; do
    case "$status" in *"(healthy)"* | "Exited (0)"*) continue ;; Up*) case "$status" in *"(health"*) ;; *) continue ;; esac ;; esac
    show "$container: $status; its last $lines lines:" "$(docker logs --tail "$lines" "$container" 2>&1)"
  # Made by compose (oneoff): containers run from an image compose built carry its project's label too.
  done < <(docker ps -a --filter "label=com.docker.compose.project=$name" --filter label=com.docker.compose.oneoff \
    --format '{{.Names}}\t{{.Status}}')
else
  while read -r service replicas; do
    [ "${replicas%%/*}" = "${replicas#*/}" ] && continue
    show "$service: $replicas tasks running; its last tasks:" \
      "$(docker service ps --no-trunc --format '{{.CurrentState}}  {{.Error}}' "$service" 2>&1 | head -n 5)"
    show "$service: its last $lines log lines:" "$(docker service logs --raw --tail "$lines" "$service" 2>&1)"
  done < <(docker service ls --filter "label=com.docker.stack.namespace=$name" --format '{{.Name}} {{.Replicas}}' |
    sed 's/ \([0-9]*\/[0-9]*\).*/ \1/')
fi

[ -n "$logs" ] || { say "no service of $name is failing now"; exit 0; }
if grep -q 'password authentication failed' <<<"$logs"; then
  say "likely cause: the database volume was made with other secrets than the ones in use now."
  say "  restore the secrets it was made with (PROD_ENV and secrets/), or, losing every row, remove"
  say "  the production volumes: make prod-kill-volumes (compose) / make swarm-down and its volumes"
fi
if grep -Eq 'NOPERM|no permissions to run' <<<"$logs"; then
  say "likely cause: Redis's ACL refuses a command the app runs: compose/redis/app.acl lists them"
  say "  (Redis reads it when it starts: restart redis after changing it)"
fi
if grep -Eq 'is an example value|is missing|is shorter than' <<<"$logs"; then
  say "likely cause: production refuses example or missing secrets: make secrets, then review PROD_ENV"
fi
exit 0
