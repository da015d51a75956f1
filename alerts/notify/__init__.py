"""Notifications to people: directory, routes, grouping, escalation, channels, durable deliveries.

Pure: directory.py, routes.py, grouping.py, escalation.py, messages.py, planner.py.
I/O: config.py (the YAML file), deliveries.py (DATA_DIR/notify.sqlite3), channels/, service.py.
The alert outbox (alerts/store_sqlite.py) is the input; docs/architecture.md §5.1 the guarantees.
"""
