#!/bin/sh
# One-shot job (temporalio/admin-tools): once the server is SERVING, create the
# namespace the worker uses and register the search attributes the incident
# workflow upserts, so the UI's workflow list can filter on them.
# Safe to run again: existing namespace and attributes are left as they are.
set -eu

: "${TEMPORAL_ADDRESS:=temporal:7233}"
: "${TEMPORAL_NAMESPACE:=default}"
: "${TEMPORAL_NAMESPACE_RETENTION:=720h}"
# Keyword attributes: keep in step with the search attribute keys in src/.
SEARCH_ATTRIBUTES="IncidentCategory IncidentSeverity IncidentStatus"

# Same workaround as temporalio/samples-server: dial the IPv4 address of the
# server, not its service name.
host=${TEMPORAL_ADDRESS%:*}
port=${TEMPORAL_ADDRESS##*:}
ip=$(getent ahosts "$host" 2>/dev/null | awk '/STREAM/ && $1 ~ /^[0-9.]+$/ { print $1; exit }' || true)
if [ -n "$ip" ]; then
  TEMPORAL_ADDRESS="$ip:$port"
fi
export TEMPORAL_ADDRESS

tries=0
until temporal operator cluster health 2>/dev/null | grep -q SERVING; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "Temporal server at $TEMPORAL_ADDRESS is not SERVING" >&2
    exit 1
  fi
  sleep 2
done

if temporal operator namespace describe --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
  echo "Namespace $TEMPORAL_NAMESPACE already exists"
else
  temporal operator namespace create --namespace "$TEMPORAL_NAMESPACE" \
    --retention "$TEMPORAL_NAMESPACE_RETENTION" \
    --description "clerk-incident-runbook incidents"
fi

# A new namespace takes a few seconds to reach every service's cache.
tries=0
until existing=$(temporal operator search-attribute list --namespace "$TEMPORAL_NAMESPACE" 2>/dev/null); do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then
    echo "Namespace $TEMPORAL_NAMESPACE is not usable" >&2
    exit 1
  fi
  sleep 2
done

for name in $SEARCH_ATTRIBUTES; do
  if printf '%s\n' "$existing" | grep -qw "$name"; then
    echo "Search attribute $name already registered"
  else
    temporal operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" \
      --name "$name" --type Keyword
  fi
done
echo "Namespace $TEMPORAL_NAMESPACE is ready"
