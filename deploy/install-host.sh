#!/bin/sh
# Lay flask-stack out on a Debian host without Docker (docs/deploying.md "Without Docker"). As root, from a
# checkout of the repository:
#
#   deploy/install-host.sh [--repository URL] [--branch main] [--server-name NAME] [--local-services]
#
#   --repository    where the deployer fetches from (default: this checkout's origin)
#   --server-name   nginx's server_name and the PUBLIC_URL mails link to (default: any name)
#   --local-services  also install PostgreSQL and Redis here, each with a user and a password of the
#                   app's own; otherwise DATABASE_URL and REDIS_URL come from the environment
#
# What it does, each step safe to run again (settings and secrets made once are kept):
#   packages   nginx, python3-venv, git, sudo, openssl (and postgresql, redis-server)
#   users      flask-stack (runs the API), flask-stack-hook (receives pushes), flask-stack-deploy
#              (makes releases; in the groups of the ledger, the API's settings and its socket)
#   settings   /etc/flask-stack/env.production (the API's), hook.env (the receiver's secrets),
#              deployer.env, tls/ (a self-signed pair until you have a real one)
#   code       the repository cloned for the deployer in /srv/flask-stack/repo; the hook's code and
#              virtualenv in /opt/flask-stack/hook (root's: no service can change its own code)
#   units      deploy/systemd/* into /etc/systemd/system; the sudoers line that lets the deployer
#              reload or restart the API's unit and nothing else
#   nginx      the site (deploy/nginx/flask-stack.conf) and the edge's snippets and error pages
#   release    the branch's tip queued as the first release: the deployer makes it as every push's
#
# NO_START=1 lays everything out but starts, enables and reloads nothing (a container without
# systemd: the test of this script).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
repository=""
branch=main
server_name=_
local_services=0
home=/srv/flask-stack
hook_home=/opt/flask-stack/hook
etc=/etc/flask-stack
state=/var/lib/flask-stack-hook

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { echo "install-host: $*" >&2; exit 1; }
secret() { openssl rand -base64 48 | tr -d '\n/+=' | cut -c1-40; }
as() { user=$1; shift; runuser -u "$user" -- "$@"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --repository) repository=$2; shift 2 ;;
    --branch) branch=$2; shift 2 ;;
    --server-name) server_name=$2; shift 2 ;;
    --local-services) local_services=1; shift ;;
    *) die "unknown option $1 (see the top of this script)" ;;
  esac
done
[ "$(id -u)" = 0 ] || die "run as root"
[ -n "$repository" ] || repository=$(git -C "$here" remote get-url origin 2>/dev/null || true)
[ -n "$repository" ] || die "--repository URL: where the deployer fetches from"
starting() { [ "${NO_START:-0}" != 1 ]; }

say "packages"
packages="nginx python3 python3-venv git sudo openssl ca-certificates"
[ "$local_services" = 0 ] || packages="$packages postgresql redis-server"
apt-get update -qq
# shellcheck disable=SC2086 # a list of package names
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null

say "users"
for user in flask-stack flask-stack-hook flask-stack-deploy; do
  id -u "$user" >/dev/null 2>&1 || adduser --quiet --system --group --home /nonexistent --no-create-home "$user"
done
# Who may connect to the API's socket (flask-stack-web.socket): nginx, and the deployer's checks.
getent group flask-stack-socket >/dev/null || addgroup --quiet --system flask-stack-socket
for membership in "flask-stack-deploy flask-stack-hook" "flask-stack-deploy flask-stack" \
  "flask-stack-deploy flask-stack-socket" "www-data flask-stack-socket"; do
  # shellcheck disable=SC2086 # user and group
  adduser --quiet $membership
done

say "folders"
install -d -o flask-stack-deploy -g flask-stack-deploy -m 0755 "$home" "$home/releases" "$home/venvs"
install -d -o root -g flask-stack -m 0750 "$etc"
install -d -o root -g root -m 0700 "$etc/tls"
install -d -o flask-stack-hook -g flask-stack-hook -m 2770 "$state"
install -d -o root -g root -m 0755 /var/www/acme "$(dirname "$hook_home")"

say "settings in $etc (made once, then kept)"
if [ ! -s "$etc/env.production" ]; then
  database_url=${DATABASE_URL:-}
  redis_url=${REDIS_URL:-}
  if [ "$local_services" = 1 ]; then
    # Without systemd (NO_START) the packages' services are not running yet.
    as postgres psql -qc 'SELECT 1' >/dev/null 2>&1 || service postgresql start >/dev/null
    redis-cli ping >/dev/null 2>&1 || service redis-server start >/dev/null
    password=$(secret)
    as postgres psql -q -v ON_ERROR_STOP=1 -c "CREATE ROLE flask_stack LOGIN PASSWORD '$password'"
    as postgres createdb -O flask_stack flask_stack
    database_url="postgresql+psycopg2://flask_stack:$password@127.0.0.1:5432/flask_stack"
    # An ACL user allowed the commands the app runs on its own keys (compose/redis/app.acl, as the
    # containers' Redis has it), kept in redis.conf across restarts.
    password=$(secret)
    rules=$(grep -v '^#' "$here/compose/redis/app.acl" | tr '\n' ' ')
    printf '\n# flask-stack (deploy/install-host.sh)\nuser flask-stack on >%s %s\n' "$password" "$rules" >> /etc/redis/redis.conf
    # shellcheck disable=SC2086 # the rules are words
    redis-cli ACL SETUSER flask-stack on ">$password" $rules >/dev/null
    redis_url="redis://flask-stack:$password@127.0.0.1:6379/0"
    # Debian's default user has no password and may do anything: any local account (the hook's,
    # www-data) could write a profile with admin rights or bring revoked tokens back. Off, as in
    # the containers; this is its last command.
    printf 'user default off\n' >> /etc/redis/redis.conf
    redis-cli ACL SETUSER default off >/dev/null
  fi
  [ -n "$database_url" ] || die "set DATABASE_URL (and REDIS_URL), or pass --local-services"
  store=database
  [ -z "$redis_url" ] || store=redis
  public_url=""
  [ "$server_name" = _ ] || public_url="https://$server_name"
  umask 027
  cat > "$etc/env.production.new" <<ENV
# The API's settings (flask-stack-web.service's EnvironmentFile; the deployer reads it for
# \`flask deploy\`). Generated by deploy/install-host.sh; .env.d/.env.production.example lists the rest.
DATABASE_URL=$database_url
REDIS_URL=$redis_url
BLACKLIST_STORAGE_TYPE=$store
FLASK_SECRET_KEY=$(secret)
JWT_SECRET_KEY=$(secret)
PUBLIC_URL=$public_url
TRUSTED_PROXY_HOPS=1
ENV
  umask 022
  chgrp flask-stack "$etc/env.production.new"
  mv "$etc/env.production.new" "$etc/env.production"
fi
if [ ! -s "$etc/hook.env" ]; then
  umask 077
  printf '# The receiver'"'"'s secrets: give HOOK_SECRET to GitHub (docs/deploying.md "Push to deploy").\nHOOK_SECRET=%s\nHOOK_STATUS_TOKEN=%s\nHOOK_BRANCH=%s\nHOOK_REPOSITORY=%s\n' \
    "$(secret)" "$(secret)" "$branch" "${HOOK_REPOSITORY:-}" > "$etc/hook.env"
  printf '# The deployer'"'"'s settings (no secrets: it checks no signature).\nHOOK_BRANCH=%s\nHOOK_REPOSITORY=%s\n' \
    "$branch" "${HOOK_REPOSITORY:-}" > "$etc/deployer.env"
  umask 022
fi
for file in known_hosts deploy-key; do
  [ -e "$etc/$file" ] || install -o root -g flask-stack-deploy -m 0640 /dev/null "$etc/$file"
done
if [ ! -s "$etc/tls/fullchain.pem" ]; then
  name=${server_name#_}
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 -subj "/CN=${name:-flask-stack}" \
    -addext "subjectAltName=DNS:${name:-localhost}" -keyout "$etc/tls/privkey.pem" -out "$etc/tls/fullchain.pem" 2>/dev/null
fi

say "the repository, for the deployer ($home/repo)"
[ -d "$home/repo/.git" ] || as flask-stack-deploy git clone --quiet --branch "$branch" "$repository" "$home/repo"

say "the hook's code and virtualenv ($hook_home)"
# Made where it stays: a virtualenv's scripts name its path.
rm -rf "$hook_home"
cp -R "$here/services/hook" "$hook_home"
python3 -m venv "$hook_home/venv"
"$hook_home/venv/bin/pip" install --quiet --no-input --require-hashes -r "$hook_home/requirements.txt"

say "systemd units and the deployer's sudoers line"
install -m 0644 "$here"/deploy/systemd/*.service "$here"/deploy/systemd/*.socket /etc/systemd/system/
cat > /etc/sudoers.d/flask-stack.new <<'SUDOERS'
# flask-stack's deployer may tell the API's gunicorn to load a new release (reload), or restart it
# when gunicorn's own code or packages changed; nothing else (deploy/install-host.sh).
flask-stack-deploy ALL=(root) NOPASSWD: /usr/bin/systemctl reload flask-stack-web.service, /usr/bin/systemctl restart flask-stack-web.service
SUDOERS
chmod 0440 /etc/sudoers.d/flask-stack.new
visudo -qcf /etc/sudoers.d/flask-stack.new
mv /etc/sudoers.d/flask-stack.new /etc/sudoers.d/flask-stack

say "nginx: the edge's snippets and error pages, the site"
install -d -m 0755 /etc/nginx/flask-stack /usr/share/nginx/_errors
edge_paths() {
  sed -e 's|/etc/nginx/snippets/|/etc/nginx/flask-stack/|g' -e 's|/dev/stdout|/var/log/nginx/flask-stack.access.log|g' "$@"
}
for snippet in "$here"/services/nginx/snippets/*.conf; do
  edge_paths "$snippet" > "/etc/nginx/flask-stack/$(basename "$snippet")"
done
install -m 0644 "$here"/services/nginx/errors/*.json /usr/share/nginx/_errors/
edge_paths "$here/deploy/nginx/flask-stack.conf" | sed "s|SERVER_NAME|$server_name|" > /etc/nginx/sites-available/flask-stack
ln -sfn ../sites-available/flask-stack /etc/nginx/sites-enabled/flask-stack
rm -f /etc/nginx/sites-enabled/default  # its default_server would take the ports
nginx -tq

if starting; then
  say "starting the services"
  systemctl daemon-reload
  systemctl enable --now flask-stack-web.socket flask-stack-hook.service flask-stack-deployer.service
  systemctl enable flask-stack-web.service
  systemctl reload-or-restart nginx
fi

say "the first release: $branch's tip, queued for the deployer"
sha=$(as flask-stack-deploy git -C "$home/repo" rev-parse "origin/$branch")
# shellcheck disable=SC2016 # expanded by the inner shell, from its arguments
as flask-stack-deploy sh -c 'cd "$1" && umask 007 && HOOK_DB=$2 HOOK_BRANCH=$3 DEPLOY_ROOT=$4 exec venv/bin/python -m hook rollback "$5"' \
  first "$hook_home" "$state/hook.sqlite" "$branch" "$home/repo" "$sha" >/dev/null
printf '\n  %s is queued: the deployer makes it live (journalctl -fu flask-stack-deployer).\n' "$sha"
printf '  Then: https://%s/api/healthz. Push-to-deploy: docs/deploying.md "Without Docker".\n\n' "${server_name#_}"
