#!/bin/sh
# Entrypoint of the `mosquitto` service of docker-compose.yml (eclipse-mosquitto image).
#
# The broker never accepts anonymous clients (mosquitto.conf: allow_anonymous false).
# Its password file is written here, at every start, from MQTT_USERNAME / MQTT_PASSWORD
# (.env), so changing the password in .env and restarting the service is enough. It
# lives in the container's own layer, never in the image, the repository or a volume.
set -eu

: "${MQTT_USERNAME:?MQTT_USERNAME is not set: copy .env.example to .env}"
: "${MQTT_PASSWORD:?MQTT_PASSWORD is not set: copy .env.example to .env}"

conf=/mosquitto/config/mosquitto.conf
# The password_file line of the mounted configuration says where the file goes.
pwfile=$(sed -n 's/^[[:space:]]*password_file[[:space:]]\{1,\}//p' "$conf" | tail -n 1)
: "${pwfile:?no password_file line in $conf}"

umask 077
mkdir -p "$(dirname "$pwfile")"
rm -f "$pwfile"
mosquitto_passwd -c -b "$pwfile" "$MQTT_USERNAME" "$MQTT_PASSWORD"
# The broker runs as the image's `mosquitto` user, which must be able to read it.
chown mosquitto:mosquitto "$pwfile"
chmod 0600 "$pwfile"
chown -R mosquitto:mosquitto /mosquitto/data

exec mosquitto -c "$conf"
