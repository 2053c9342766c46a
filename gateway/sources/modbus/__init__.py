"""Modbus RTU/TCP source: polling by register maps (domain/maps)."""
