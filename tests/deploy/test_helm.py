"""The Helm chart, rendered by Helm's own template engine (helm-python-sdk, offline), checked for
the invariants an install and a zero-loss upgrade rely on."""

from __future__ import annotations

import re
from functools import cache

import pytest
import yaml

from bot.sessions.store import parse_sentinel_url
from tests.deploy.conftest import CHART, looks_secret, manifests, one, render_chart, unknown_settings

pytestmark = pytest.mark.deploy

SECRETS = {"SUPPORTBOT_SECRET_KEY": "test-cookie-key",
           "SUPPORTBOT_DATABASE_URL": "postgresql://sb:test-db-password@db:5432/supportbot"}
VALUES = {"secrets": {"env": SECRETS}}
FULLNAME = "sb-supportbot"

CASES = {
    "default": VALUES,
    "default-again": VALUES,
    "no-secrets": {},
    "existing-secret": {"secrets": {"existingSecret": "supportbot-env"}},
    "external-redis": {"redis": {"mode": "external"},
                       "secrets": {"env": {**SECRETS, "SUPPORTBOT_REDIS_URL": "redis://r:6379/0"}}},
    "external-redis-no-url": {"redis": {"mode": "external"}, "secrets": {"env": SECRETS}},
    "servicemonitor": {**VALUES, "serviceMonitor": {"enabled": True}},
    "servicemonitor-off": {**VALUES, "serviceMonitor": {"enabled": False}},
    "no-hpa": {**VALUES, "autoscaling": {"enabled": False}, "replicaCount": 3},
    "secret-in-config": {**VALUES, "config": {"SUPPORTBOT_TELEGRAM_TOKEN": "123:abc"}},
    "max-unavailable": {**VALUES, "rollingUpdate": {"maxUnavailable": 1}},
    "two-redis": {**VALUES, "redis": {"bundled": {"replicas": 2}}},
}


@cache
def rendered() -> dict:
    result = render_chart(*CASES.values())
    return {"lint": result["lint"], **dict(zip(CASES, result["renders"], strict=True))}


def docs(case: str) -> list[dict]:
    render = rendered()[case]
    assert "ok" in render, render.get("error")
    return manifests(render["ok"])


def error(case: str) -> str:
    render = rendered()[case]
    assert "error" in render, f"{case} should not render"
    return render["error"]


def app_container(case: str = "default") -> dict:
    deployment = one(docs(case), "Deployment", FULLNAME)
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_lint_is_clean() -> None:
    assert rendered()["lint"]["errors"] == []


def test_every_object_is_well_formed() -> None:
    for doc in docs("default") + docs("servicemonitor") + docs("external-redis"):
        assert doc["apiVersion"] and doc["kind"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
        assert len(doc["metadata"]["name"]) <= 63


def test_probes_point_at_readyz_and_healthz() -> None:
    container = app_container()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {p["name"] for p in container["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in port_names


def test_rolling_update_never_drops_a_serving_pod() -> None:
    deployment = one(docs("default"), "Deployment", FULLNAME)
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] >= 1
    assert "maxUnavailable must stay 0" in error("max-unavailable")


def test_shutdown_drains_before_sigkill() -> None:
    deployment = one(docs("default"), "Deployment", FULLNAME)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep" and int(sleep[1]) >= 5
    args = container["args"]
    assert args[0] == "serve" and args[args.index("--host") + 1] == "0.0.0.0"
    graceful = float(args[args.index("--graceful-timeout") + 1])
    assert pod["terminationGracePeriodSeconds"] > int(sleep[1]) + graceful


def test_hpa_on_cpu_owns_the_replica_count() -> None:
    all_docs = docs("default")
    hpa = one(all_docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME}
    assert hpa["spec"]["minReplicas"] >= 2
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    deployment = one(all_docs, "Deployment", FULLNAME)
    assert "replicas" not in deployment["spec"], "with an HPA, an upgrade must not reset replicas"
    assert "cpu" in deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    fixed = docs("no-hpa")
    assert not [d for d in fixed if d["kind"] == "HorizontalPodAutoscaler"]
    assert one(fixed, "Deployment", FULLNAME)["spec"]["replicas"] == 3


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_pdb_and_service_select_the_app_pods() -> None:
    all_docs = docs("default")
    pod_labels = one(all_docs, "Deployment", FULLNAME)["spec"]["template"]["metadata"]["labels"]
    pdb = one(all_docs, "PodDisruptionBudget", FULLNAME)
    assert _selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable")
    service = one(all_docs, "Service", FULLNAME)
    assert _selects(service["spec"]["selector"], pod_labels)
    redis_labels = one(all_docs, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert not _selects(service["spec"]["selector"], redis_labels), "app Service must not pick Redis pods"


def test_service_monitor_scrapes_metrics() -> None:
    all_docs = docs("servicemonitor")
    monitor = one(all_docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    service = one(all_docs, "Service", FULLNAME)
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert _selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    # `auto` renders it only where the CRD exists (an offline render has none); false never does.
    assert not [d for d in docs("default") if d["kind"] == "ServiceMonitor"]
    assert not [d for d in docs("servicemonitor-off") if d["kind"] == "ServiceMonitor"]


def test_values_file_holds_no_secret() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["secrets"]["env"] == {} and values["secrets"]["existingSecret"] == ""
    assert not [k for k in values["config"] if looks_secret(k)]
    assert values["redis"]["bundled"]["auth"]["existingSecret"] == ""


def test_secrets_are_required_and_never_defaulted() -> None:
    message = error("no-secrets")
    assert "SUPPORTBOT_SECRET_KEY is required" in message
    assert "SUPPORTBOT_REDIS_URL" in error("external-redis-no-url")
    assert "looks secret" in error("secret-in-config")


def test_secret_holds_only_what_was_given() -> None:
    all_docs = docs("default")
    secret = one(all_docs, "Secret", FULLNAME)
    assert secret["stringData"] == SECRETS
    config = one(all_docs, "ConfigMap", FULLNAME)
    assert not [k for k in config["data"] if looks_secret(k)]
    text = "\n".join(yaml.safe_dump(d) for d in all_docs if d["kind"] != "Secret")
    for value in SECRETS.values():
        assert value not in text, "a secret value leaked outside the Secret"
    envfrom = app_container()["envFrom"]
    assert {"secretRef": {"name": FULLNAME}} in envfrom
    assert {"configMapRef": {"name": FULLNAME}} in envfrom


def test_existing_secret_is_used_and_none_is_created() -> None:
    all_docs = docs("existing-secret")
    assert not [d for d in all_docs if d["kind"] == "Secret" and d["metadata"]["name"] == FULLNAME]
    assert {"secretRef": {"name": "supportbot-env"}} in app_container("existing-secret")["envFrom"]


def test_redis_password_is_generated_not_literal() -> None:
    first = one(docs("default"), "Secret", f"{FULLNAME}-redis")
    second = one(docs("default-again"), "Secret", f"{FULLNAME}-redis")
    assert first["data"]["redis-password"] != second["data"]["redis-password"], "random per install"
    assert first["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    def secret_values(node: object, path: str = "") -> list[str]:
        if isinstance(node, dict):
            return [hit for k, v in node.items() for hit in secret_values(v, f"{path}.{k}")]
        return [path] if looks_secret(path.rsplit(".", 1)[-1]) and node not in ("", None, [], {}) else []

    assert secret_values(yaml.safe_load((CHART / "values.yaml").read_text())) == []


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def test_sentinel_wiring() -> None:
    all_docs = docs("default")
    sts = one(all_docs, "StatefulSet", f"{FULLNAME}-redis")
    replicas = sts["spec"]["replicas"]
    assert replicas >= 3
    pod = sts["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"redis", "sentinel"}
    assert containers["sentinel"]["command"][-1] == "--sentinel"
    assert containers["sentinel"]["ports"][0]["containerPort"] == 26379
    env = _env(pod["initContainers"][0])
    quorum = int(env["QUORUM"]["value"])
    assert replicas // 2 < quorum <= replicas, "a majority of sentinels decides a failover"
    headless = one(all_docs, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"]
    peers = env["PEERS"]["value"].split()
    namespace = "prod"
    assert peers == [f"{sts['metadata']['name']}-{i}.{headless['metadata']['name']}.{namespace}.svc"
                     for i in range(replicas)]
    assert env["ME"]["value"].startswith("$(POD_NAME).")

    # The app reaches every sentinel and asks for the same master set.
    app_env = list(app_container()["env"])
    names = [e["name"] for e in app_env]
    assert names.index("REDIS_PASSWORD") < names.index("SUPPORTBOT_REDIS_URL"), "$(VAR) needs it first"
    password_ref = app_env[names.index("REDIS_PASSWORD")]["valueFrom"]["secretKeyRef"]
    assert password_ref == {"name": f"{FULLNAME}-redis", "key": "redis-password"}
    url = app_env[names.index("SUPPORTBOT_REDIS_URL")]["value"]
    sentinels, master, options = parse_sentinel_url(url.replace("$(REDIS_PASSWORD)", "pw"))
    assert sentinels == [(peer, 26379) for peer in peers]
    assert master == env["MASTER_NAME"]["value"]
    assert options["password"] == "pw" and options["sentinel_password"] == "pw"

    # The pods run the chart's own script (tested against real redis-server in test_redis_sentinel).
    scripts = one(all_docs, "ConfigMap", f"{FULLNAME}-redis-scripts")
    assert scripts["data"]["redis-config.sh"] == (CHART / "files" / "redis-config.sh").read_text()
    assert pod["initContainers"][0]["command"] == ["sh", "/scripts/redis-config.sh"]
    assert one(all_docs, "PodDisruptionBudget", f"{FULLNAME}-redis")["spec"]["maxUnavailable"] == 1
    claims = sts["spec"]["volumeClaimTemplates"]
    assert claims[0]["metadata"]["name"] == "data", "the AOF lives on a persistent volume"
    assert "at least 3" in error("two-redis")


def test_external_redis_has_no_bundled_pods() -> None:
    all_docs = docs("external-redis")
    assert not [d for d in all_docs if d["kind"] == "StatefulSet"]
    assert "SUPPORTBOT_REDIS_URL" not in _env(app_container("external-redis"))
    assert one(all_docs, "Secret", FULLNAME)["stringData"]["SUPPORTBOT_REDIS_URL"]


def test_pods_run_as_non_root_with_a_read_only_root() -> None:
    all_docs = docs("default")
    deployment = one(all_docs, "Deployment", FULLNAME)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    redis_pod = one(all_docs, "StatefulSet")["spec"]["template"]["spec"]
    assert redis_pod["securityContext"]["runAsNonRoot"] is True


def test_every_supportbot_variable_is_a_real_setting() -> None:
    names: set[str] = set()
    for case in ("default", "external-redis"):
        for doc in docs(case):
            if doc["kind"] == "ConfigMap" and not doc["metadata"]["name"].endswith("-scripts"):
                names |= set(doc["data"])
            if doc["kind"] == "Secret":
                names |= set(doc.get("stringData", {}))
            if doc["kind"] == "Deployment":
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    names |= set(_env(container))
    # And the settings the values file shows in comments, so an example cannot carry a typo.
    values_text = (CHART / "values.yaml").read_text()
    documented = set(re.findall(r"\b(SUPPORTBOT_[A-Z0-9_]+)\b", values_text))
    assert len(names | documented) > 8
    assert unknown_settings(names | documented) == []
