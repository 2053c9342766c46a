"""The `microville` command: one module per command group (`main` holds the root and the
run commands), the demo and what only the command line uses (embedded broker, Grafana
upload)."""
