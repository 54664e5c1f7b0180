#!/usr/bin/env bash
# Production settings and secrets, kept apart:
#
#   .env.d/.env.production   settings (server name, ports, mail, ...) from the committed template;
#                            compose reads it, and web gets it as its environment. No secret in it.
#   .env.d/secrets/<name>    one file per secret, each mounted (as a Docker secret) into the services
#                            that need it and no other; the app reads it through NAME_FILE.
#
# A secret is a strong random value (48 letters and digits, about 285 bits: safe in URLs and on
# command lines). Existing files are kept. A secret still written in the settings file (as this
# script wrote them before) moves into its file, so upgrading keeps every password. The folder is
# readable by its owner only; the files in it are world-readable, so that the unprivileged users
# inside the containers can read the ones mounted into them, while the folder keeps everyone else
# on the host out.
#
#   make-secrets.sh [SETTINGS_FILE]     (secrets go to secrets/ beside it)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
template="$repo/.env.d/.env.production.example"
target=${1:-"$repo/.env.d/.env.production"}
secrets_dir="$(cd "$(dirname "$target")" && pwd)/secrets"

# secret file <- where its value came from before (the settings file's variable of that name)
declare -A secrets=(
  [flask_secret_key]=FLASK_SECRET_KEY
  [jwt_secret_key]=JWT_SECRET_KEY
  [postgres_password]=POSTGRES_SUPERUSER_PASSWORD
  [app_db_password]=POSTGRES_PASSWORD
  [redis_app_password]=REDIS_APP_PASSWORD
  [redis_jobs_password]=REDIS_JOBS_PASSWORD
  [hook_secret]=HOOK_SECRET
  [hook_status_token]=HOOK_STATUS_TOKEN
)

say() { printf '[secrets] %s\n' "$*"; }
random_secret() { head -c 96 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 48; }

umask 077
if [ -f "$target" ]; then
  say "$target exists: keeping its settings"
else
  cp "$template" "$target"
  say "created $target from the template"
fi
mkdir -p "$secrets_dir"
chmod 700 "$secrets_dir"

created=0
moved=0
for name in "${!secrets[@]}"; do
  file="$secrets_dir/$name"
  variable=${secrets[$name]}
  if [ ! -s "$file" ]; then
    value=$(sed -n "s/^$variable=//p" "$target" | tail -n 1)
    if [ -n "$value" ] && [ "$value" != "CHANGE-ME" ]; then
      moved=$((moved + 1))
    else
      value=$(random_secret)
      created=$((created + 1))
    fi
    printf '%s' "$value" > "$file"
  fi
  chmod 644 "$file"
  # No secret stays in the settings file.
  sed -i "/^$variable=/d" "$target"
done
# The old layout's Redis password (requirepass) has no use now: Redis has ACL users.
sed -i '/^REDIS_PASSWORD=/d' "$target"
if [ "$secrets_dir" != "$repo/.env.d/secrets" ] && ! grep -q '^SECRETS_DIR=' "$target"; then
  echo "SECRETS_DIR=$secrets_dir" >> "$target"
fi
chmod 600 "$target"
say "secrets in $secrets_dir: $created generated, $moved moved out of $target"
say "review the settings in $target (server name, certificates, mail)"
