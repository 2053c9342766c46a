"""The HTTP API: dependencies (`deps`), one router per resource, response schemas, request
limits.
"""
