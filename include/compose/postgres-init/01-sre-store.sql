-- Run once by the postgres image on its first start (docker-compose.yaml): the SRE store's own database.
CREATE DATABASE sre OWNER airflow;
