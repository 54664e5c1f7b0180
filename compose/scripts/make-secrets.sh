#!/usr/bin/env bash
# Write .env.d/.env.production from the committed template, each CHANGE-ME replaced by a strong
# random value (48 letters and digits, about 285 bits: safe in URLs and on command lines). An
# existing file keeps its values; only placeholders still in it are filled. The file is
# git-ignored and readable by its owner only. `make-secrets.sh FILE` writes FILE instead.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
template="$repo/.env.d/.env.production.example"
target=${1:-"$repo/.env.d/.env.production"}

umask 077
if [ -f "$target" ]; then
  echo "[secrets] $target exists: filling only the placeholders left in it"
else
  cp "$template" "$target"
  echo "[secrets] created $target from the template"
fi

filled=0
tmp=$(mktemp)
while IFS= read -r line || [ -n "$line" ]; do
  if [[ "$line" =~ ^([A-Z0-9_]+)=CHANGE-ME$ ]]; then
    line="${BASH_REMATCH[1]}=$(head -c 96 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 48)"
    filled=$((filled + 1))
  fi
  printf '%s\n' "$line"
done < "$target" > "$tmp"
mv "$tmp" "$target"
chmod 600 "$target"
echo "[secrets] generated $filled secret(s); review the rest of $target (server name, certificates, mail)"
