#!/bin/sh
# make-certs.sh DIR: the TLS certificate of the broker's devices' listener, signed by
# the stack's own CA, made once: DIR/ca.crt (devices pin it), DIR/ca.key, DIR/server.crt,
# DIR/server.key. Does nothing when DIR already holds server.crt and server.key (made
# earlier, or the operator's own, e.g. from the building's CA).
# MQTT_TLS_NAMES: the names and addresses devices use to reach the broker, in
# subjectAltName syntax (default DNS:mosquitto,DNS:localhost,IP:127.0.0.1).
# Run by the `broker-certs` service of docker-compose.yml (the microville image has
# openssl; the eclipse-mosquitto image has none) and by entrypoint.sh where openssl is.
set -eu
certs=${1:?usage: make-certs.sh DIR}
if [ -s "$certs/server.crt" ] && [ -s "$certs/server.key" ]; then
    exit 0
fi
umask 077
mkdir -p "$certs"
names=${MQTT_TLS_NAMES:-DNS:mosquitto,DNS:localhost,IP:127.0.0.1}
openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=Microville broker CA" \
    -keyout "$certs/ca.key" -out "$certs/ca.crt" 2> /dev/null
openssl req -newkey rsa:3072 -nodes -subj "/CN=${names#*:}" \
    -keyout "$certs/server.key.new" -out "$certs/server.csr" 2> /dev/null
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    "$names" > "$certs/server.ext"
openssl x509 -req -in "$certs/server.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" \
    -CAcreateserial -days 825 -extfile "$certs/server.ext" -out "$certs/server.crt.new" 2> /dev/null
mv "$certs/server.key.new" "$certs/server.key"
mv "$certs/server.crt.new" "$certs/server.crt"
rm -f "$certs/server.csr" "$certs/server.ext"
chmod 0755 "$certs"
chmod 0644 "$certs/ca.crt" "$certs/server.crt"
echo "make-certs: made the stack's CA ($certs/ca.crt) and the broker's TLS certificate for $names"
