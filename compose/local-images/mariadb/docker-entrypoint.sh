#!/bin/bash
# What the official mariadb entrypoint does, for the variables tests and users set: MARIADB_ or
# MYSQL_ ROOT_PASSWORD (required unless ALLOW_EMPTY_ROOT_PASSWORD), DATABASE, USER and PASSWORD
# (that user gets every right on that database), /docker-entrypoint-initdb.d/*.sql|*.sh; then the
# server, as the mysql user, listening on every address.
set -euo pipefail

for name in ROOT_PASSWORD ALLOW_EMPTY_ROOT_PASSWORD DATABASE USER PASSWORD; do
  mariadb_name="MARIADB_$name" mysql_name="MYSQL_$name"
  printf -v "$mariadb_name" '%s' "${!mariadb_name:-${!mysql_name:-}}"
done

if [ "${1:0:1}" = '-' ]; then
  set -- mariadbd "$@"
fi

# A string literal for SQL: backslashes and quotes doubled.
literal() { printf "'%s'" "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/''/g")"; }

if [ "$1" = 'mariadbd' ] && [ ! -d /var/lib/mysql/mysql ]; then
  if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ]; then
    echo >&2 'error: MARIADB_ROOT_PASSWORD is not set (set MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1 to allow none)'
    exit 1
  fi
  chown mysql:mysql /var/lib/mysql
  # root@localhost only, reached through the socket by the OS's root (unix_socket) until it has a password.
  mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
  # A temporary server on the socket only, so nobody connects before initialisation is done.
  socket=/run/mysqld/init.sock
  mariadbd --user=mysql --skip-networking --socket="$socket" &
  server=$!
  for _ in $(seq 60); do
    mariadb-admin --socket="$socket" --user=root ping >/dev/null 2>&1 && break
    sleep 1
  done
  {
    password=$(literal "$MARIADB_ROOT_PASSWORD")
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $password;"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY $password;"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "$MARIADB_DATABASE" ]; then
      echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"
    fi
    if [ -n "$MARIADB_USER" ]; then
      echo "CREATE USER $(literal "$MARIADB_USER")@'%' IDENTIFIED BY $(literal "$MARIADB_PASSWORD");"
      if [ -n "$MARIADB_DATABASE" ]; then
        echo "GRANT ALL ON \`$MARIADB_DATABASE\`.* TO $(literal "$MARIADB_USER")@'%';"
      fi
    fi
  } | mariadb --socket="$socket" --user=root
  # shellcheck source=/dev/null  # the init scripts are mounted at run time
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "running $f"; . "$f" ;;
      *.sql) echo "running $f"; mariadb --socket="$socket" --user=root --password="$MARIADB_ROOT_PASSWORD" \
        ${MARIADB_DATABASE:+"$MARIADB_DATABASE"} < "$f" ;;
      *) ;;
    esac
  done
  kill "$server"
  wait "$server" || true
  echo 'MariaDB init process complete; ready for start up.'
fi

if [ "$1" = 'mariadbd' ] && [ "$(id -u)" = '0' ]; then
  exec "$@" --user=mysql
fi
exec "$@"
