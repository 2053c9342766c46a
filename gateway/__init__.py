"""Gateway: reads meters (MQTT now, serial later), decodes payloads, writes readings.

Pipeline: a *source* yields raw messages (topic, payload, receive time); a
*decoder* (``decoders.DECODERS``, by format name) turns a payload into values; the
*router* binds values to configured meters and normalises units; the *batch writer*
writes readings to a *store* (``stores.open_store``). Rejected messages go to the
dead-letter log with their reason.
"""
