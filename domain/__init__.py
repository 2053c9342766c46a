"""Microville domain: site model, units, readings, indicator maths and the store port.

Nothing in this package talks to a device, a broker or a database. The maths modules —
``units``, ``periods``, ``balance`` (with ``quality``'s rules), ``energy``, ``carbon``,
``factors``, ``materials``, ``waste``, ``targets``, ``imports`` (CSV text → values) and
``alerts`` — import no I/O library at all, which an import-linter contract in
``pyproject.toml`` enforces.
"""
