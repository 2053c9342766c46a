"""Indicators API (FastAPI): balance per period, health. Build it with
:func:`microville.service.app.create_app`."""
