"""Building simulator: a seeded model of a site's PV, load and grid meters, published over MQTT.

``building`` computes the power and cumulative energy indexes (pure), ``payloads``
encodes meter indexes in each configured payload format (pure), ``publisher`` sends
them to a broker and returns the ground truth to check the gateway and indicators.
"""
