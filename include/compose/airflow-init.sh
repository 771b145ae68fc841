#!/usr/bin/env bash
# airflow-init of docker-compose.yaml: everything the other Airflow containers need before they start. Idempotent:
# it runs on every `docker compose up` and converges (migrations, the pools, the files) on what this checkout says.
set -euo pipefail

: "${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD in .env}"
: "${GAMESRE_DEMO_FLEET:?}" "${GAMESRE_REPORT_DIR:?}" "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?}"
cd /opt/gamesre

echo "airflow-init: migrating Airflow's metadata database"
airflow db migrate

# The DAGs' pools (the one-slot chaos_gameday pool counting deferred tasks), named in
# include/config/chaos/policy.yaml and read by demo/airflow_env.py airflow_pools().
pools="$(dirname "$GAMESRE_DEMO_FLEET")/pools.json"
python -m demo.compose pools-file "$pools"
airflow pools import "$pools"

# The fleet as the local deploy/chaos backends reach it (container hostnames), and the admin's password.
python -m demo.compose fleet-file "$GAMESRE_DEMO_FLEET"
python -m demo.compose auth-file "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
mkdir -p "$GAMESRE_REPORT_DIR"
echo "airflow-init: done"
