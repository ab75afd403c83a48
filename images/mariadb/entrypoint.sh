#!/bin/bash
# Entry point of the MariaDB stand-in for the official mysql image (see Dockerfile beside it).
# First start on a data dir without system tables: create them, the root password, the
# database MYSQL_DATABASE (utf8mb4) and the user MYSQL_USER with every right on it, from any
# host. Then, on every start: exec mariadbd (PID 1, so SIGTERM is a clean shutdown) with
# explicit options only (--no-defaults: Debian's /etc/mysql files log to /var/log).
# Arguments starting with "-" are passed on to mariadbd, as the mysql image does.
set -euo pipefail

datadir=/var/lib/mysql
rundir=/var/run/mysqld
# written before initialising and removed when done: its presence means an interrupted
# first start, whose half-made data dir is cleared and made again
pending="$datadir/.standin-init-pending"

log() { printf '%s [entrypoint] %s\n' "$(date -u +'%Y-%m-%d %H:%M:%S')" "$*" >&2; }

# `mysqld`/`mariadbd` [options] is the server too; any other command runs instead of it
if [[ "${1:-}" == mysqld || "${1:-}" == mariadbd ]]; then
    shift
elif [[ $# -gt 0 && "$1" != -* ]]; then
    exec "$@"
fi

server_opts=(
    --datadir="$datadir"
    --socket="$rundir/mysqld.sock"
    --pid-file="$rundir/mysqld.pid"
    --tmpdir=/tmp
    --bind-address=0.0.0.0
    --port=3306
    # as the mysql image: no DNS lookups of clients; MySQL 8's default character set
    --skip-name-resolve
    --character-set-server=utf8mb4
    --collation-server=utf8mb4_unicode_ci
    # not 2: the readiness probe's password-less ping would log "Access denied" every 10 s
    --log-warnings=1
    # a fresh ext4 volume's root holds lost+found: not a database
    --ignore-db-dirs=lost+found
)

# SQL string literal contents: backslash and quote escaped
sql_str() { local s=${1//\\/\\\\}; printf '%s' "${s//\'/\\\'}"; }
# SQL identifier between backquotes: backquote doubled
sql_id() { printf '%s' "${1//\`/\`\`}"; }

initialise() {
    if [[ -z "${MYSQL_ROOT_PASSWORD:-}" && -z "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" ]]; then
        log "error: the data dir is not initialised and MYSQL_ROOT_PASSWORD is not set"
        exit 1
    fi
    if [[ -n "${MYSQL_USER:-}" && -z "${MYSQL_PASSWORD:-}" ]]; then
        log "error: MYSQL_USER is set but MYSQL_PASSWORD is not"
        exit 1
    fi
    if [[ "${MYSQL_USER:-}" == root ]]; then
        log "error: MYSQL_USER must not be root (root is made from MYSQL_ROOT_PASSWORD)"
        exit 1
    fi
    log "initialising $datadir"
    touch "$pending"
    # it holds the passwords: gone however the script ends
    init_sql=$(mktemp /tmp/init.XXXXXX.sql)
    trap 'rm -f "$init_sql"' EXIT
    local rootpw; rootpw=$(sql_str "${MYSQL_ROOT_PASSWORD:-}")
    {
        # bootstrap runs without grant tables: load them, or user statements fail
        echo "FLUSH PRIVILEGES;"
        # install-db makes passwordless root@<hostname>, @127.0.0.1, @::1: only
        # root@localhost and root@% (the mysql image's default root host) stay
        echo "DROP USER IF EXISTS 'root'@'127.0.0.1', 'root'@'::1';"
        echo "EXECUTE IMMEDIATE IF(@@hostname IN ('localhost', '%'), 'DO 0'," \
            "CONCAT('DROP USER IF EXISTS \\'root\\'@\\'', @@hostname, '\\''));"
        echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$rootpw';"
        echo "CREATE USER 'root'@'%' IDENTIFIED BY '$rootpw';"
        echo "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"
        if [[ -n "${MYSQL_DATABASE:-}" ]]; then
            echo "CREATE DATABASE IF NOT EXISTS \`$(sql_id "$MYSQL_DATABASE")\`" \
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
        fi
        if [[ -n "${MYSQL_USER:-}" ]]; then
            local user; user=$(sql_str "$MYSQL_USER")
            echo "CREATE USER '$user'@'%' IDENTIFIED BY '$(sql_str "$MYSQL_PASSWORD")';"
            if [[ -n "${MYSQL_DATABASE:-}" ]]; then
                echo "GRANT ALL PRIVILEGES ON \`$(sql_id "$MYSQL_DATABASE")\`.* TO '$user'@'%';"
            fi
        fi
    } >"$init_sql"
    # --extra-file runs the SQL in install-db's bootstrap, so the server never listens
    # before root has its password.
    mariadb-install-db --no-defaults --datadir="$datadir" --tmpdir=/tmp \
        --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
        --extra-file="$init_sql" >&2
    rm -f "$init_sql" "$pending"
    trap - EXIT
    log "initialised: database '${MYSQL_DATABASE:-}', user '${MYSQL_USER:-}'"
}

if [[ -e "$pending" ]]; then
    log "an earlier initialisation was interrupted: clearing $datadir"
    find "$datadir" -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} +
fi
if [[ ! -d "$datadir/mysql" ]]; then
    initialise
fi

exec mariadbd --no-defaults "${server_opts[@]}" "$@"
