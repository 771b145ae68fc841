"""Async triggers; the triggerer imports them by their classpath (plugins/ is on its sys.path)."""
