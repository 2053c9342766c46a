#!/bin/sh
# refuse-placeholders.sh VAR... -- COMMAND [ARG...]: exit 1 with one line naming the
# first VAR that is unset, empty or still the "change-me…" placeholder of .env.example;
# else run COMMAND. The entrypoint wrapper of the docker-compose.yml services whose
# image we do not build (InfluxDB, Grafana): no service starts on a placeholder secret.
set -eu
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
    eval "value=\${$1:-}"
    case "$value" in
        "") echo "$1 is not set: copy .env.example to .env and set it" >&2; exit 1 ;;
        change-me*) echo "$1 is still the placeholder of .env.example: set a secret of your own in .env" >&2; exit 1 ;;
    esac
    shift
done
[ "$#" -gt 1 ] || { echo "usage: refuse-placeholders.sh VAR... -- COMMAND [ARG...]" >&2; exit 2; }
shift
exec "$@"
