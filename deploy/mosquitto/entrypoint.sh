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

# Topic ACL (acl_file of the configuration): the stack's account reads and writes every
# topic, and reads the broker's own $SYS topics (the healthcheck of docker-compose.yml
# subscribes to one; "#" never matches $SYS); each device of MQTT_DEVICES
# ("name:password:topic name2:password2:topic2", the same in .env) gets its own account that may only publish under its own topic (and
# read nothing): a stolen device password cannot forge another meter's readings.
aclfile=$(sed -n 's/^[[:space:]]*acl_file[[:space:]]\{1,\}//p' "$conf" | tail -n 1)
: "${aclfile:?no acl_file line in $conf}"
# --- acl begin (tests/test_mosquitto_acl.py runs this block)
{
    echo "user $MQTT_USERNAME"
    echo "topic readwrite #"
    echo "topic read \$SYS/#"
    for device in ${MQTT_DEVICES:-}; do
        name=${device%%:*}
        topic=${device##*:}
        echo ""
        echo "user $name"
        echo "topic write $topic"
        echo "topic write $topic/#"
    done
} > "$aclfile"
for device in ${MQTT_DEVICES:-}; do
    name=${device%%:*}
    rest=${device#*:}
    mosquitto_passwd -b "$pwfile" "$name" "${rest%%:*}"
done
# --- acl end
# The broker runs as the image's `mosquitto` user, which must be able to read it.
chown mosquitto:mosquitto "$pwfile"
chmod 0600 "$pwfile"
chown mosquitto:mosquitto "$aclfile"
chmod 0600 "$aclfile"
chown -R mosquitto:mosquitto /mosquitto/data

exec mosquitto -c "$conf"
