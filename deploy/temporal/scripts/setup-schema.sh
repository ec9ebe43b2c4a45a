#!/bin/sh
# One-shot job (temporalio/admin-tools): create the `temporal` and
# `temporal_visibility` databases in PostgreSQL and bring both schemas to the
# version shipped in this admin-tools image, i.e. the one the pinned server expects.
#
# Safe to run on every `docker compose up`: `create` ignores an existing
# database, `setup-schema -v 0.0` leaves a newer recorded version alone, and
# `update-schema` applies only the versions that are missing.
set -eu

: "${SQL_PLUGIN:=postgres12}"
: "${SQL_HOST:?SQL_HOST must name the PostgreSQL host}"
: "${SQL_PORT:=5432}"
: "${SQL_USER:?SQL_USER must be set}"
: "${SQL_PASSWORD:?SQL_PASSWORD must be set}" # read by temporal-sql-tool from the environment
: "${DBNAME:=temporal}"
: "${VISIBILITY_DBNAME:=temporal_visibility}"
# Where admin-tools keeps the schema files; `npm run test:selfhosted` points it at its own copy.
: "${SCHEMA_ROOT:=/etc/temporal/schema/postgresql/v12}"

# admin-tools has nc; a host with PostgreSQL's client tools but no netcat uses pg_isready.
reachable() {
  if command -v nc >/dev/null 2>&1; then
    nc -z -w 2 "$SQL_HOST" "$SQL_PORT"
  else
    pg_isready -q -h "$SQL_HOST" -p "$SQL_PORT" -t 2
  fi
}

tries=0
until reachable; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "PostgreSQL at $SQL_HOST:$SQL_PORT is not reachable" >&2
    exit 1
  fi
  sleep 2
done

sql_tool() {
  temporal-sql-tool --plugin "$SQL_PLUGIN" --ep "$SQL_HOST" -p "$SQL_PORT" -u "$SQL_USER" "$@"
}

setup_database() {
  db=$1
  schema_dir=$2
  echo "Setting up database $db from $schema_dir"
  sql_tool --db "$db" create
  sql_tool --db "$db" setup-schema -v 0.0
  sql_tool --db "$db" update-schema -d "$schema_dir"
}

setup_database "$DBNAME" "$SCHEMA_ROOT/temporal/versioned"
setup_database "$VISIBILITY_DBNAME" "$SCHEMA_ROOT/visibility/versioned"
echo "PostgreSQL schemas are ready"
