"""Microville Monitor: prove that a renovated building is energy-positive,
zero-carbon and zero-waste.

The core every application shares: the version, runtime settings (`settings`), the MQTT
client factory (`mqtt`) and the sample sites (`sites/`). The applications are top-level
packages of their own, one per folder: `domain`, `stores`, `gateway`, `service`,
`firmware_sim`, `cli`, `bench` (docs/architecture.md).
"""

from pathlib import Path

__version__ = "0.1.0"

#: The sample site configurations and materials shipped with the package.
SAMPLE_SITES = Path(__file__).parent / "sites"
