"""Who may call what: bearer tokens and roles (`tokens`), the app-wide check (`auth`), rate
limits (`ratelimit`).
"""
