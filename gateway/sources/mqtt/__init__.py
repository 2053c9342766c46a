"""MQTT source: persistent sessions per topic, payload decoders by format, topic → meter routing."""
