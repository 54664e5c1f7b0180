# shellcheck shell=sh
# Sourced by the edge's scripts: what this nginx binary supports, and the one way to reload it.

nginx_installed_version() { nginx -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p'; }

# nginx_at_least 1.25.1: true when the running nginx is that version or newer.
nginx_at_least() {
  [ "$(printf '%s\n%s\n' "$1" "$(nginx_installed_version)" | sort -t. -k1,1n -k2,2n -k3,3n | head -n 1)" = "$1" ]
}

# nginx_workers serving|draining: the pids of nginx's workers that take new connections, or of
# those that finish their requests after a reload. Processes come and go while we look: a vanished
# one is simply not listed.
nginx_workers() {
  for dir in /proc/[0-9]*; do
    title=$({ tr '\0' ' ' < "$dir/cmdline"; } 2>/dev/null) || continue
    case "$title" in
      *"worker process is shutting down"*) [ "$1" = draining ] && echo "${dir#/proc/}" ;;
      *"worker process"*) [ "$1" = serving ] && echo "${dir#/proc/}" ;;
    esac
  done
  return 0
}

# still_serving PID...: those of the given workers that still take new connections.
still_serving() {
  serving=" $(nginx_workers serving | tr '\n' ' ') "
  for pid in "$@"; do
    case "$serving" in *" $pid "*) echo "$pid" ;; esac
  done
}

# reload_gracefully: check the whole configuration, then reload: workers finish what they are
# serving, new ones use the new configuration. Returns 1, changing nothing, when the configuration
# does not pass `nginx -t` (nginx's complaint on stderr); 2 when nginx was told but has not applied
# it within 10 s.
#
# `nginx -s reload` only signals the master, which then reads the configuration and starts new
# workers: until it has, the old workers still take new connections (for tens of milliseconds,
# longer under load). Return only once every one of them is finishing up or gone, so that a caller
# that next waits for the old workers to drain (edge-upstream.sh --draining) loses nothing.
reload_gracefully() {
  nginx -t -q || return 1
  before=$(nginx_workers serving)
  nginx -s reload
  waited=0
  # shellcheck disable=SC2086  # $before is a list of PIDs, one argument each
  while [ -n "$(still_serving $before)" ]; do
    if [ "$waited" -ge 200 ]; then
      echo "[edge] nginx has not applied the reload within 10 s" >&2
      return 2
    fi
    sleep 0.05
    waited=$((waited + 1))
  done
}

# reload_or_restore FILE PREVIOUS WHAT: reload_gracefully after FILE changed; when nginx refuses the
# configuration, FILE gets its PREVIOUS content back and the log says WHAT was refused. Fails
# unless nginx took the new configuration.
reload_or_restore() {
  errors=$(mktemp)
  reloaded=0
  reload_gracefully 2>"$errors" || reloaded=$?
  if [ "$reloaded" = 1 ]; then
    printf '%s\n' "$2" > "$1"
    echo "[edge] refused $3: $(cat "$errors")" >&2
  elif [ "$reloaded" != 0 ]; then
    cat "$errors" >&2
  fi
  rm -f "$errors"
  [ "$reloaded" = 0 ]
}
