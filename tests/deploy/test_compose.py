"""deploy/docker-compose.yml: the invariants a `docker compose up` relies on (no Docker engine
here, so the file is checked as data)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, looks_secret, unknown_settings

pytestmark = pytest.mark.deploy

# Compose interpolates values, not comments: comment lines are left out.
COMPOSE_TEXT = "\n".join(line for line in (DEPLOY / "docker-compose.yml").read_text().splitlines()
                         if not line.lstrip().startswith("#"))
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES = COMPOSE["services"]
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
REQUIRED = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}$")


def env_of(service: dict) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def app_services() -> dict[str, dict]:
    return {name: s for name, s in SERVICES.items()
            if s.get("build", {}).get("dockerfile") == "deploy/Dockerfile"}


def test_two_app_replicas_behind_the_proxy() -> None:
    apps = app_services()
    replicas = sum(s.get("deploy", {}).get("replicas", 1) for s in apps.values())
    assert replicas >= 2, "two app replicas (deploy.replicas or two services)"
    proxy = SERVICES["proxy"]
    depends = proxy["depends_on"]
    for name in apps:
        assert depends[name]["condition"] == "service_healthy"
    for name, app in apps.items():
        assert "ports" not in app, f"{name}: replicas are reached through the proxy only"
        assert "container_name" not in app, f"{name}: a fixed name stops replicas"
        command = app["command"]
        assert command[0] == "serve" and command[command.index("--host") + 1] == "0.0.0.0"
    assert any(p.endswith(":8080") for p in proxy["ports"])


def test_proxy_config_is_mounted_and_balances_the_app_service() -> None:
    mounts = SERVICES["proxy"]["volumes"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in mounts
    conf = (DEPLOY / "nginx.conf").read_text()
    for name in app_services():
        # `resolve` keeps following the replicas' addresses (nginx >= 1.27.3).
        assert re.search(rf"server {name}:8000 resolve", conf)
    image = SERVICES["proxy"]["image"]
    major, minor = (int(x) for x in re.search(r":(\d+)\.(\d+)", image).groups())
    assert (major, minor) >= (1, 28), "upstream `resolve` needs nginx 1.27.3 or newer"


def test_redis_keeps_an_append_only_file() -> None:
    redis = SERVICES["redis"]
    command = " ".join(redis["command"]) if isinstance(redis["command"], list) else redis["command"]
    config_files = [v.split(":")[0] for v in redis["volumes"] if v.startswith("./")]
    config = "".join((DEPLOY / f).read_text() for f in config_files)
    assert re.search(r"^appendonly yes$", config, re.M) or "--appendonly yes" in command
    assert "redis.conf" in command
    assert any(v.endswith(":/data") for v in redis["volumes"]), "AOF on a named volume"


@pytest.mark.parametrize("name", ["app", "proxy", "redis", "postgres", "llm"])
def test_long_running_services_have_healthchecks(name: str) -> None:
    check = SERVICES[name]["healthcheck"]
    assert check["test"] and check["interval"]


def test_app_healthcheck_hits_healthz_and_shutdown_is_graceful() -> None:
    for app in app_services().values():
        assert "/healthz" in " ".join(app["healthcheck"]["test"])
        grace = int(app["stop_grace_period"].rstrip("s"))
        command = app["command"]
        assert grace > float(command[command.index("--graceful-timeout") + 1])
        assert app["depends_on"]["redis"]["condition"] == "service_healthy"
        assert app["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_no_secret_is_written_into_the_file() -> None:
    for name, service in SERVICES.items():
        for key, value in env_of(service).items():
            if value is None or not (looks_secret(key) or "://" in str(value)):
                continue
            value = str(value)
            credential = re.search(r"://[^:/@]*:([^@]*)@", value)
            if credential:  # a URL: its password part must come from the environment
                assert REQUIRED.match(credential.group(1)), f"{name}.{key}: literal password"
            elif looks_secret(key):
                assert REQUIRED.match(value), f"{name}.{key} must be ${{VAR:?...}} or passed through"
    # Every secret-looking variable used anywhere is required (`:?`) or passed through, never defaulted.
    for var, op, default in INTERPOLATION.findall(COMPOSE_TEXT):
        if looks_secret(var):
            assert op in (":?", "?"), f"${{{var}{op}{default}}}: a secret must be required"


def test_required_variables_are_documented_in_env_example() -> None:
    example = (DEPLOY / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, re.M))
    required = {var for var, op, _ in INTERPOLATION.findall(COMPOSE_TEXT) if op == ":?"}
    assert required and required <= documented
    # The example carries no values for secrets.
    for line in example.splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match and looks_secret(match.group(1)):
            assert match.group(2) == "", f"{match.group(1)} has a value in .env.example"


def test_llm_server_is_optional_behind_a_profile() -> None:
    for name in ("llm", "llm-pull"):
        assert SERVICES[name]["profiles"] == ["llm"]
    for name, service in SERVICES.items():
        if not service.get("profiles"):
            assert "llm" not in (service.get("depends_on") or {}), f"{name} must start without the LLM"
    app_env = env_of(SERVICES["app"])
    for key in ("SUPPORTBOT_GENERATION__BACKEND", "SUPPORTBOT_GENERATION__BASE_URL",
                "SUPPORTBOT_GENERATION__MODEL", "SUPPORTBOT_GENERATION__API_KEY"):
        assert key in app_env and app_env[key] is None, f"{key} is passed through from deploy/.env"
    example = (DEPLOY / ".env.example").read_text()
    assert "SUPPORTBOT_GENERATION__BACKEND=openai" in example
    assert "SUPPORTBOT_GENERATION__BASE_URL=http://llm:11434/v1" in example


def test_every_supportbot_variable_is_a_real_setting() -> None:
    names = set()
    for service in SERVICES.values():
        names |= set(env_of(service))
    names |= {var for var, _, _ in INTERPOLATION.findall(COMPOSE_TEXT)}
    names |= set(re.findall(r"\b(SUPPORTBOT_[A-Z0-9_]+)=", (DEPLOY / ".env.example").read_text()))
    # Not settings: the image to run and the host port, read by Compose only.
    names -= {"SUPPORTBOT_IMAGE", "SUPPORTBOT_HTTP_PORT"}
    assert unknown_settings(names) == []


def test_resolver_catches_a_typo() -> None:
    assert unknown_settings(["SUPPORTBOT_REDIS_URL", "SUPPORTBOT_THRESHOLDS__INTENT"]) == []
    assert unknown_settings(["SUPPORTBOT_REDIS_URI", "SUPPORTBOT_THRESHOLDS__INTNET",
                             "SUPPORTBOT_GENERATION__BASEURL", "SUPPORTBOT_PORT__X"]) == [
        "SUPPORTBOT_GENERATION__BASEURL", "SUPPORTBOT_PORT__X", "SUPPORTBOT_REDIS_URI",
        "SUPPORTBOT_THRESHOLDS__INTNET"]


def test_mounted_and_built_files_exist() -> None:
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            if volume.startswith("./"):
                assert (DEPLOY / volume.split(":")[0]).is_file(), volume
        if "build" in service:
            assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
