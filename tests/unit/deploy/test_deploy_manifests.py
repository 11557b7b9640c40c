"""deploy/: the compose file and the Kubernetes manifests parse, and name only env vars and ports the services
really read (their pydantic-settings classes are the truth)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from deploy.settings_reference import ROOT, console_scripts, env_names, settings_of

SCRIPTS = console_scripts()
# Long-running processes: each needs a Deployment (services) or a compose service (services and simulators).
SERVICES = sorted(c for c in SCRIPTS if c.startswith("minaintyg-") and c not in {"minaintyg-admin", "minaintyg-infra"})
SIMULATORS = sorted(c for c in SCRIPTS if c.endswith("-sim"))
K8S = sorted(p for p in (ROOT / "deploy" / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")
COMPOSE = ROOT / "deploy" / "compose.yaml"


class StrictLoader(yaml.SafeLoader):
    """YAML as Kubernetes and compose read it: a key twice in one mapping is an error, not "the last one wins"
    (`yaml.safe_load` keeps the last silently, which hid a duplicated service and two run-together manifests)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges are overridden on purpose
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_all(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=StrictLoader))


def load(text: str) -> Any:
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass


def port_of(settings: type[BaseSettings], env: dict[str, str]) -> int:
    prefix = str(settings.model_config.get("env_prefix", "")).upper()
    default = settings.model_fields["port"].default
    return int(env.get(f"{prefix}PORT", default))


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in K8S:
        for document in load_all(path.read_text()):
            if document is not None:
                yield path, document


def config_maps() -> dict[str, dict[str, str]]:
    return {
        d["metadata"]["name"]: {str(k): str(v) for k, v in d["data"].items()}
        for _, d in k8s_documents()
        if d["kind"] == "ConfigMap"
    }


def containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, document in k8s_documents():
        if document["kind"] == "Deployment":
            for container in document["spec"]["template"]["spec"]["containers"]:
                yield f"{path.name}:{container['name']}", container


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """Variables a container gets, from its ConfigMaps and its own list (values of secrets as '<secret>')."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps()[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        env[item["name"]] = str(item.get("value", "<secret>"))
    return env


def test_every_kubernetes_document_is_well_formed() -> None:
    documents = list(k8s_documents())
    assert documents
    for path, document in documents:
        assert {"apiVersion", "kind", "metadata"} <= document.keys(), path
        assert document["metadata"].get("name"), path
        if document["kind"] == "Deployment":
            selector = document["spec"]["selector"]["matchLabels"]
            labels = document["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), f"{path}: the selector does not match the pod labels"


def test_every_service_runs_as_a_deployment_with_probes() -> None:
    commands = {container["command"][0] for _, container in containers()}
    assert set(SERVICES) <= commands, f"no Deployment for {set(SERVICES) - commands}"


@pytest.mark.parametrize("name", [name for name, _ in containers()])
def test_a_container_names_only_what_its_service_reads(name: str) -> None:
    container = dict(containers())[name]
    settings = settings_of(container["command"][0])
    assert settings is not None, f"{name}: {container['command'][0]} has no settings class"
    env = container_env(container)
    unknown = set(env) - env_names(settings)
    assert not unknown, f"{name}: {sorted(unknown)} are read by nothing"
    assert env.get(f"{str(settings.model_config.get('env_prefix', '')).upper()}HOST") == "0.0.0.0"  # noqa: S104
    port = port_of(settings, env)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port in ports.values(), f"{name}: listens on {port}, declares {ports}"
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert container[probe]["httpGet"]["path"] == path
        assert ports[container[probe]["httpGet"]["port"]] == port
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]


def test_the_services_behind_each_service_object_exist() -> None:
    deployments = {d["metadata"]["name"]: d for _, d in k8s_documents() if d["kind"] == "Deployment"}
    for _, service in k8s_documents():
        if service["kind"] != "Service":
            continue
        target = service["spec"]["selector"]["app.kubernetes.io/name"]
        assert target in deployments, f"Service {service['metadata']['name']} selects nothing"
        pod = deployments[target]["spec"]["template"]["spec"]["containers"][0]
        names = {p["name"] for p in pod["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = load(COMPOSE.read_text())["services"]
    return services


def test_compose_runs_every_service_and_simulator_on_official_images() -> None:
    services = compose_services()
    commands = {s["command"][0] for s in services.values() if isinstance(s.get("command"), list)}
    assert set(SERVICES) | set(SIMULATORS) <= commands, f"missing: {(set(SERVICES) | set(SIMULATORS)) - commands}"
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["postgres"]["image"].startswith("postgres:")


@pytest.mark.parametrize("name", [n for n, s in load(COMPOSE.read_text())["services"].items() if "command" in s])
def test_a_compose_service_names_only_what_it_reads(name: str) -> None:
    service = compose_services()[name]
    settings = settings_of(service["command"][0])
    env = {str(k): str(v) for k, v in (service.get("environment") or {}).items()}
    if settings is None:  # a client such as the platform simulator: configured by its arguments only
        assert not env, f"{name} reads no environment"
        return
    unknown = set(env) - env_names(settings)
    assert not unknown, f"{name}: {sorted(unknown)} are read by nothing"
    if "port" not in settings.model_fields:
        return
    port = port_of(settings, env)
    published = [str(p).rsplit(":", 1)[-1] for p in service.get("ports", [])]
    assert str(port) in published or not published, f"{name}: listens on {port}, publishes {published}"


def test_the_readme_documents_every_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    variables = set().union(*(env_names(s) for c in SCRIPTS if (s := settings_of(c)) is not None))
    missing = sorted(v for v in variables if f"`{v}`" not in readme)
    assert not missing, f"README.md does not document {missing} (python -m deploy.settings_reference prints rows)"


def test_strict_loader_refuses_a_duplicate_key_and_run_together_documents() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'idp-sim'"):
        load("services:\n  idp-sim: {image: a}\n  idp-sim: {image: b}\n")
    # Two manifests without `---` between them are one mapping with every top-level key twice.
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key 'apiVersion'"):
        load_all("apiVersion: v1\nkind: Service\napiVersion: apps/v1\nkind: Deployment\n")
    # Merge keys still override what they merge, as compose uses them.
    assert load("base: &b {x: 1, y: 2}\nother: {<<: *b, y: 3}\n")["other"] == {"x": 1, "y": 3}


@pytest.mark.parametrize("path", [*K8S, COMPOSE], ids=lambda p: p.name)
def test_every_deploy_file_loads_strictly(path: Path) -> None:
    documents = [d for d in load_all(path.read_text()) if d is not None]
    assert documents
    if path.parent.name == "k8s":
        for document in documents:
            assert {"apiVersion", "kind", "metadata"} <= set(document), f"{path.name}: {document.get('kind')}"
