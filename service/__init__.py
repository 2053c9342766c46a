"""Indicators API (FastAPI): balance per period, health. Build it with
:func:`service.app.create_app`."""
