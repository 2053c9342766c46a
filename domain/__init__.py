"""Microville domain: site model, units, readings, indicator maths and the store port.

Nothing in this package talks to a device, a broker or a database; the pure maths
modules (``units``, ``periods``, ``balance``) import no I/O library at all, which an
import-linter contract in ``pyproject.toml`` enforces.
"""
