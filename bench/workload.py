"""The ingestion workload: a site of 100 meters and the MQTT messages they publish.

Single-reading messages: 50 meters, each on its own topic, one SenML record per message.
SenML packs: 5 ten-channel devices, one pack of 10 records (one per channel) per message.
Every reading has its own (meter, time), so the store keeps every one of them and the
count in the store must equal the count sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SITE = "bench"
SINGLE_METERS = 50
DEVICES, CHANNELS = 5, 10
#: 2025-01-01T00:00Z: device times, one second apart per meter.
T0_S = 1_735_689_600

Kind = Literal["single", "senml"]


def single_name(i: int) -> str:
    return f"urn:dev:bench-s{i:03d}:energy"


def pack_base(j: int) -> str:
    return f"urn:dev:bench-p{j}:"


def meters() -> list[tuple[str, str, str]]:
    """(meter id, topic, SenML resolved name) of every meter of the bench site."""
    out = [(f"s{i:03d}", f"bench/s/{i:03d}", single_name(i)) for i in range(SINGLE_METERS)]
    out += [
        (f"p{j}c{c}", f"bench/p/{j}", f"{pack_base(j)}c{c}")
        for j in range(DEVICES)
        for c in range(CHANNELS)
    ]
    return out


def site_toml() -> str:
    """The site configuration the gateway reads."""
    lines = [
        "[[sites]]",
        f'id = "{SITE}"',
        'name = "Ingestion benchmark"',
        'timezone = "Europe/Paris"',
        "floor_area_m2 = 1000",
        "location = { lat = 47.47, lon = -0.55 }",
    ]
    for meter_id, topic, name in meters():
        lines += [
            "",
            "[[sites.meters]]",
            f'id = "{meter_id}"',
            'role = "submeter"',
            'unit = "Wh"',
            f'source = {{ type = "mqtt", topic = "{topic}", format = "senml", name = "{name}" }}',
        ]
    return "\n".join(lines) + "\n"


def topics() -> list[str]:
    return sorted({topic for _, topic, _ in meters()})


@dataclass(frozen=True)
class Workload:
    kind: Kind
    messages: list[tuple[str, bytes]]
    readings: int


def single_messages(n: int) -> Workload:
    """``n`` one-record SenML messages spread over the 50 single meters."""
    out = []
    for k in range(n):
        i, t = k % SINGLE_METERS, T0_S + k // SINGLE_METERS
        payload = f'[{{"n":"{single_name(i)}","u":"Wh","v":{k}.5,"t":{t}}}]'
        out.append((f"bench/s/{i:03d}", payload.encode()))
    return Workload("single", out, n)


def senml_packs(readings: int) -> Workload:
    """``readings`` readings (rounded down to whole packs) in packs of 10 channels."""
    packs = readings // CHANNELS
    out = []
    for k in range(packs):
        j, t = k % DEVICES, T0_S + k // DEVICES
        records = [f'{{"bn":"{pack_base(j)}","bt":{t},"bu":"Wh","n":"c0","v":{k}.5}}']
        records += [f'{{"n":"c{c}","v":{k}.{c}}}' for c in range(1, CHANNELS)]
        out.append((f"bench/p/{j}", ("[" + ",".join(records) + "]").encode()))
    return Workload("senml", out, packs * CHANNELS)


def workload(kind: Kind, readings: int) -> Workload:
    return single_messages(readings) if kind == "single" else senml_packs(readings)


def line_protocol(w: Workload) -> list[str]:
    """The workload's readings as the gateway writes them (InfluxDB line protocol, ms)."""
    lines = []
    for k, (topic, _) in enumerate(w.messages):
        if w.kind == "single":
            i, t = k % SINGLE_METERS, T0_S + k // SINGLE_METERS
            lines.append(f"energy,meter=s{i:03d},site={SITE} value={k}.5 {t * 1000}")
        else:
            j, t = int(topic.rsplit("/", 1)[1]), T0_S + k // DEVICES
            lines.append(f"energy,meter=p{j}c0,site={SITE} value={k}.5 {t * 1000}")
            lines += [
                f"energy,meter=p{j}c{c},site={SITE} value={k}.{c} {t * 1000}"
                for c in range(1, CHANNELS)
            ]
    return lines
