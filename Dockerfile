# The Airflow image for docker-compose.yaml: the official Airflow 3.3.2 image plus this project's pinned deps.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /opt/gamesre/
RUN pip install --no-cache-dir -r /opt/gamesre/requirements.txt -c /opt/gamesre/constraints.txt
