"""Operators of this project (thin: they defer and delegate to gamesre.airflow glue)."""
