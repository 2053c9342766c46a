"""Linky TIC source: the pure stream decoder and the serial line it reads."""
