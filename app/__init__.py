"""Microville Monitor: prove that a renovated building is energy-positive,
zero-carbon and zero-waste.

Sub-packages (each maps a top-level folder of the repository):
``microville.domain`` (domain/), ``microville.gateway`` (gateway/),
``microville.service`` (service/), ``microville.firmware_sim`` (firmware_sim/).
"""

__version__ = "0.1.0"
