"""Alerts: the engine (state in SQLite, rules evaluated on the use cases), the outbox and
its delivery channels.
"""
