#!/bin/sh
# Entrypoint of the `mosquitto` service of docker-compose.yml (eclipse-mosquitto image).
#
# The broker never accepts anonymous clients (mosquitto.conf: allow_anonymous false).
# At every start it writes, from .env, the password file of each listener (the stack's
# account on the internal one, the devices' on the TLS one) and the topic ACL, so that
# changing a password in .env and restarting the service is enough. They live in the
# container's own layer, never in the image, the repository or a volume. At the first
# start it also makes the stack's own CA and the TLS listener's certificate (kept on the
# mosquitto-certs volume), unless the operator put their own there.
#
# MICROVILLE_MOSQUITTO_HOME (default /mosquitto) and MICROVILLE_MOSQUITTO_USER (default
# mosquitto) exist for the tests, which run this script on a broker of their own.
set -eu

fail() {
    echo "mosquitto entrypoint: $*" >&2
    exit 1
}

# A secret still holding the placeholder of .env.example is refused, by name.
refuse_placeholder() { # NAME VALUE
    case "$2" in
        change-me*) fail "$1 is still the placeholder of .env.example: set a password of your own in .env" ;;
    esac
}

: "${MQTT_USERNAME:?MQTT_USERNAME is not set: copy .env.example to .env}"
: "${MQTT_PASSWORD:?MQTT_PASSWORD is not set: copy .env.example to .env}"
refuse_placeholder MQTT_PASSWORD "$MQTT_PASSWORD"

home=${MICROVILLE_MOSQUITTO_HOME:-/mosquitto}
owner=${MICROVILLE_MOSQUITTO_USER:-mosquitto}
conf=$home/config/mosquitto.conf
stack_passwords=$home/config/passwords-stack
device_passwords=$home/config/passwords-devices
aclfile=$home/config/acl
certs=$home/certs

umask 077
mkdir -p "$home/config" "$home/data" "$certs"
rm -f "$stack_passwords" "$device_passwords"
mosquitto_passwd -c -b "$stack_passwords" "$MQTT_USERNAME" "$MQTT_PASSWORD"
: > "$device_passwords"

# Topic ACL (acl_file of both listeners): the stack's account reads and writes every
# topic, and reads the broker's own $SYS topics (the healthcheck of docker-compose.yml
# subscribes to one; "#" never matches $SYS). Each device of MQTT_DEVICES
# ("name:password:topic name2:password2:topic2", whitespace-separated, in .env) gets its
# own account that may only publish on its own topic, exactly (a topic ending in "/#"
# in MQTT_DEVICES allows its subtopics, nothing else does), and read nothing: a stolen
# device password cannot forge another meter's readings.
# The name is what comes before the first ":", the topic what comes after the last
# one, and the password everything between: it may hold any character, ":" included,
# but whitespace (which separates the devices).
# --- acl begin
{
    echo "user $MQTT_USERNAME"
    echo "topic readwrite #"
    echo "topic read \$SYS/#"
} > "$aclfile"
for device in ${MQTT_DEVICES:-}; do
    name=${device%%:*}
    topic=${device##*:}
    rest=${device#*:}
    password=${rest%:*}
    [ "$rest" != "$device" ] && [ "$password" != "$rest" ] ||
        fail "MQTT_DEVICES: \"$name\" is not name:password:topic"
    [ -n "$name" ] && [ -n "$password" ] && [ -n "$topic" ] ||
        fail "MQTT_DEVICES: \"$name\" has an empty name, password or topic"
    case "$name" in
        */* | "$MQTT_USERNAME") fail "MQTT_DEVICES: device name \"$name\" is taken or has a \"/\"" ;;
    esac
    refuse_placeholder "the password of device $name in MQTT_DEVICES" "$password"
    mosquitto_passwd -b "$device_passwords" "$name" "$password"
    {
        echo ""
        echo "user $name"
        echo "topic write $topic"
    } >> "$aclfile"
done
# --- acl end

# The TLS listener's certificate (mosquitto-certs volume): the operator's, or the one
# signed by the stack's own CA that make-certs.sh made (the broker-certs service of
# docker-compose.yml runs it first; here it runs where openssl is, as in the tests).
# Devices pin ca.crt: docker compose cp mosquitto:/mosquitto/certs/ca.crt .
if [ ! -s "$certs/server.crt" ] || [ ! -s "$certs/server.key" ]; then
    command -v openssl > /dev/null ||
        fail "no $certs/server.crt and server.key: run the broker-certs service or put your own there"
    sh "${MICROVILLE_MAKE_CERTS:-$(dirname "$0")/make-certs.sh}" "$certs"
fi

# The broker runs as the image's `mosquitto` user, which must be able to read them.
chown "$owner" "$stack_passwords" "$device_passwords" "$aclfile" "$certs/server.key"
chmod 0600 "$stack_passwords" "$device_passwords" "$aclfile" "$certs/server.key"
chmod 0755 "$certs"
chown -R "$owner" "$home/data"

exec mosquitto -c "$conf"
