"""Benchmarks of the whole chain (``microville bench``): ingestion against the machine's
ceiling and a peer pipeline (Node-RED), query latency on a year of data, report time,
memory. See docs/reference/benchmarks.md."""
