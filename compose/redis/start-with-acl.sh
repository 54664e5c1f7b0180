#!/bin/sh
# Start redis-server with its users from secret files, then hand over to the image's own entrypoint
# (which drops root). No password reaches the command line or the environment, where `docker
# inspect` and `ps` would show it; the ACL file holds only its SHA-256.
#
#   default  off: a client that does not log in can do nothing
#   app      the API's commands on its own keys, as compose/redis/app.acl lists them (mounted at
#            /usr/local/etc/redis/app.acl); no FLUSHALL, KEYS, CONFIG...
#   jobs     the job queue's commands on its own keys and channels (compose/redis/jobs.acl, mounted
#            at /usr/local/etc/redis/jobs.acl): Celery's broker, as api/jobs.py sets it up
#   health   PING only, for the healthcheck
set -eu

acl=/run/redis/users.acl
app_rules=$(grep -v '^#' /usr/local/etc/redis/app.acl | tr '\n' ' ')
app_hash=$(tr -d '\r\n' < /run/secrets/redis_app_password | sha256sum | cut -d' ' -f1)
jobs_rules=$(grep -v '^#' /usr/local/etc/redis/jobs.acl | tr '\n' ' ')
jobs_hash=$(tr -d '\r\n' < /run/secrets/redis_jobs_password | sha256sum | cut -d' ' -f1)
cat > "$acl" <<ACL
user default off
user app on #$app_hash $app_rules
user jobs on #$jobs_hash $jobs_rules
user health on nopass resetchannels -@all +ping
ACL
chmod 644 "$acl"
exec docker-entrypoint.sh "$@" --aclfile "$acl"
