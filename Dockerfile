# The project image of docker-compose.yaml: the official Airflow 3.3.2 image plus this project's pinned
# dependencies and code. Airflow's containers run it as Airflow; the demo's fleet, load generator and Slack sink
# run it as plain Python (`python -m demo.compose fleet`, demo/loadgen.py, demo/slack_sink.py).
FROM apache/airflow:3.3.2-python3.11

COPY requirements.txt constraints.txt /opt/gamesre/
RUN pip install --no-cache-dir -r /opt/gamesre/requirements.txt -c /opt/gamesre/constraints.txt

# The code, for a container without the bind mounts of docker-compose.yaml (which override it when present).
COPY --chown=airflow:root dags /opt/gamesre/dags
COPY --chown=airflow:root plugins /opt/gamesre/plugins
COPY --chown=airflow:root include /opt/gamesre/include
COPY --chown=airflow:root demo /opt/gamesre/demo

# Mount points of the named volumes: created here so the volumes start owned by airflow and writable by group 0
# (compose runs the containers as ${AIRFLOW_UID}:0).
USER root
RUN mkdir -p /opt/gamesre/state /opt/gamesre/slack-sink \
    && chown -R airflow:root /opt/gamesre \
    && chmod -R g+rwX /opt/gamesre
USER airflow

ENV GAMESRE_REPO=/opt/gamesre \
    PYTHONPATH=/opt/gamesre/plugins:/opt/gamesre
WORKDIR /opt/airflow
