#!/bin/sh
# The app's own Postgres role: it owns its database and the public schema (so migrations can create
# and change tables), and it is no superuser: it cannot create roles or databases, read other
# databases' files, or run programs on the server. Its password comes from a secret file.
#
# The postgres image runs this when it creates a new volume (/docker-entrypoint-initdb.d/). On an
# existing volume, `make db-roles` runs it; it is idempotent.
#
#   APP_DB_USER (app), APP_DB_PASSWORD_FILE, POSTGRES_USER (the superuser), POSTGRES_DB
set -eu

app_user=${APP_DB_USER:-app}
app_password=$(cat "${APP_DB_PASSWORD_FILE:?set APP_DB_PASSWORD_FILE}")
database=${POSTGRES_DB:-postgres}

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname "$database" \
  -v app_user="$app_user" -v app_password="$app_password" -v database="$database" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'app_user')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L',
              :'app_user', :'app_password') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'database', :'app_user') \gexec
SELECT format('ALTER SCHEMA public OWNER TO %I', :'app_user') \gexec
SQL
echo "[db] role $app_user: owns database $database, no superuser"
