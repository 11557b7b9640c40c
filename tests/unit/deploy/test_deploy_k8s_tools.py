"""deploy/k8s and deploy/compose.yaml as the real tools read them: kustomize builds the manifests, every built
object of a Kubernetes kind validates against that version's published schema (kubernetes-validate, strict: unknown
fields are errors), every Strimzi and CloudNativePG object against its operator's CustomResourceDefinition
(validators generated from the CRDs, tests/crd_validator), the compose file loads with compose-go (the Compose
specification's reference loader), and the security posture the manifests promise holds in what is applied."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deploy.local import pgroles

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZE = ROOT / ".cache" / "bin" / "kustomize"
COMPOSECHECK = ROOT / ".cache" / "bin" / "composecheck"
CRD_VALIDATOR = ROOT / "tests" / "crd_validator"
KUBERNETES_VERSION = "1.33.0"
# Operator kinds: validated against their operators' CRDs (test_every_custom_resource_validates_against_its_crd).
OPERATOR_KINDS = {"Kafka", "KafkaNodePool", "KafkaUser", "Cluster", "ScheduledBackup", "Database"}


def kustomize_build() -> list[dict[str, Any]]:
    if not KUSTOMIZE.exists():
        pytest.fail(f"{KUSTOMIZE} is missing: run deploy/local/tools.sh (make test does)")
    out = subprocess.run([str(KUSTOMIZE), "build", str(K8S)], check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d is not None]


@pytest.fixture(scope="module")
def built() -> list[dict[str, Any]]:
    return kustomize_build()


def test_kustomize_builds_every_manifest_file(built: list[dict[str, Any]]) -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    on_disk = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk, "every manifest is in kustomization.yaml"
    kinds = Counter(d["kind"] for d in built)
    assert kinds["Deployment"] == 6
    assert kinds["Service"] == 5
    assert {d["metadata"].get("namespace") for d in built if d["kind"] != "Namespace"} == {"minaintyg"}


def test_kustomize_refuses_run_together_documents(tmp_path: Path) -> None:
    """The check means something: two manifests without `---` between them fail the build."""
    for path in K8S.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    stats = (tmp_path / "stats.yaml").read_text()
    (tmp_path / "stats.yaml").write_text(stats.replace("\n---\napiVersion: apps/v1", "\napiVersion: apps/v1", 1))
    result = subprocess.run([str(KUSTOMIZE), "build", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "already" in result.stderr or "duplicate" in result.stderr.lower() or "mapping key" in result.stderr


def test_every_kubernetes_object_validates_strictly(built: list[dict[str, Any]]) -> None:
    checked = 0
    for document in built:
        if document["kind"] in OPERATOR_KINDS:
            continue
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked == len([d for d in built if d["kind"] not in OPERATOR_KINDS])


def validate_custom_resources(documents: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    if not (CRD_VALIDATOR / "node_modules").exists():
        pytest.fail(f"{CRD_VALIDATOR}/node_modules is missing: run make install (npm ci of its package-lock.json)")
    return subprocess.run(
        ["node", str(CRD_VALIDATOR / "validate.mjs")],
        input=json.dumps(documents),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_custom_resource_validates_against_its_crd(built: list[dict[str, Any]]) -> None:
    result = validate_custom_resources(built)
    assert result.returncode == 0, result.stdout + result.stderr
    valid = sorted(line.split()[-1] for line in result.stdout.splitlines() if line.startswith("valid "))
    expected = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in built if d["kind"] in OPERATOR_KINDS)
    assert valid == expected


@pytest.mark.parametrize(
    ("kind", "change", "said"),
    [
        ("Kafka", lambda spec: spec["kafka"]["listeners"][0].update(tls="no"), "tls must be boolean"),
        ("KafkaUser", lambda spec: spec["authorization"]["acls"][0].update(operations=["Steal"]), "allowed values"),
        ("Cluster", lambda spec: spec.update(instances="three"), "instances must be integer"),
        ("ScheduledBackup", lambda spec: spec.pop("cluster"), "required property"),
    ],
)
def test_an_invalid_custom_resource_is_refused(kind: str, change: Any, said: str) -> None:
    document = next(d for d in kustomize_build() if d["kind"] == kind)
    change(document["spec"])
    result = validate_custom_resources([document])
    assert result.returncode == 1
    assert said in result.stdout


def test_a_custom_resource_of_an_unknown_version_is_refused() -> None:
    document = next(d for d in kustomize_build() if d["kind"] == "Kafka")
    document["apiVersion"] = "kafka.strimzi.io/v9"
    result = validate_custom_resources([document])
    assert result.returncode == 1
    assert "not a version" in result.stdout


def test_the_database_is_backed_up_continuously_and_nightly(built: list[dict[str, Any]]) -> None:
    (cluster,) = (d for d in built if d["kind"] == "Cluster")
    backup = cluster["spec"]["backup"]
    assert backup["retentionPolicy"] == "30d"
    store = backup["barmanObjectStore"]
    assert store["wal"]["encryption"] == store["data"]["encryption"] == "AES256"
    (scheduled,) = (d for d in built if d["kind"] == "ScheduledBackup")
    assert scheduled["spec"]["cluster"]["name"] == cluster["metadata"]["name"]


def composecheck(*files: Path) -> subprocess.CompletedProcess[str]:
    if not COMPOSECHECK.exists():
        pytest.fail(f"{COMPOSECHECK} is missing: run deploy/local/tools.sh (make test does)")
    return subprocess.run([str(COMPOSECHECK), *map(str, files)], capture_output=True, text=True, timeout=60)


def test_the_compose_file_is_valid_by_the_compose_specification() -> None:
    result = composecheck(ROOT / "deploy" / "compose.yaml")
    assert result.returncode == 0, result.stderr
    assert "valid: 11 services" in result.stdout


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda text: text.replace("\nservices:\n", "\nservices:\n  intake:\n    image: x\n", 1), "already defined"),
        (lambda text: text.replace("    image:", "    imagee:", 1), "imagee"),
    ],
)
def test_compose_check_refuses_a_duplicate_key_and_an_unknown_field(tmp_path: Path, edit: Any, said: str) -> None:
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    changed = edit(compose)
    assert changed != compose
    (tmp_path / "compose.yaml").write_text(changed)
    result = composecheck(tmp_path / "compose.yaml")
    assert result.returncode == 1
    assert said in result.stderr


def test_an_unknown_field_is_refused() -> None:
    deployment = next(d for d in kustomize_build() if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["envFromm"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def pod_specs(built: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in built if d["kind"] == "Deployment"}


def test_no_service_account_token_is_mounted(built: list[dict[str, Any]]) -> None:
    for name, spec in pod_specs(built).items():
        assert spec.get("automountServiceAccountToken") is False, name


def test_every_deployment_has_a_disruption_budget(built: list[dict[str, Any]]) -> None:
    budgets = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for d in built
        if d["kind"] == "PodDisruptionBudget"
    }
    deployments = {
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for d in built if d["kind"] == "Deployment"
    }
    assert budgets == deployments


def test_network_policies_deny_by_default_and_allow_only_the_architecture(built: list[dict[str, Any]]) -> None:
    policies = {d["metadata"]["name"]: d["spec"] for d in built if d["kind"] == "NetworkPolicy"}
    deny = policies["default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny
    assert "egress" not in deny
    # Consent's API answers the portal only; the portal is the only service that calls it.
    consent_from = policies["consent"]["ingress"][0]["from"]
    assert consent_from == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "portal"}}}]
    callers_of_consent = [
        name
        for name, spec in policies.items()
        for rule in spec.get("egress", [])
        for peer in rule.get("to", [])
        if peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "consent"
    ]
    assert callers_of_consent == ["portal"]
    # Only the portal (eID provider) and dispatch (recipients) leave the cluster.
    leaving = sorted(
        name
        for name, spec in policies.items()
        for rule in spec.get("egress", [])
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    )
    assert leaving == ["dispatch", "portal"]
    # Nothing but the ingress controller reaches intake, the portal and the reports from outside the namespace.
    exposed = sorted(
        name
        for name, spec in policies.items()
        for rule in spec.get("ingress", [])
        for peer in rule.get("from", [])
        if peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
        == "ingress-nginx"
    )
    assert exposed == ["intake", "portal", "stats-reports"]


DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")  # name[:tag]@sha256:<64 hex digits>
# Strimzi's components that run an image of the operator's choosing (a tag) unless the Kafka names one.
STRIMZI_COMPONENTS = ("topicOperator", "userOperator")


def image_references(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, reference) of every image an object names: `image` and `imageName` fields at any depth."""
    found: list[tuple[str, str]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"image", "imageName"} and isinstance(value, str):
                    found.append((f"{path}/{key}", value))
                else:
                    walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{path}/{i}")

    walk(document, "")
    return found


def unpinned_images(documents: list[dict[str, Any]]) -> list[str]:
    """Every image not pinned by digest, and every operator-run component left to its operator's default image."""
    problems = []
    for document in documents:
        name = f"{document['kind']}/{document['metadata']['name']}"
        problems += [f"{name}{path}: {ref}" for path, ref in image_references(document) if not DIGEST.match(ref)]
        spec = document.get("spec", {})
        if document["kind"] == "Cluster" and "imageName" not in spec and "imageCatalogRef" not in spec:
            problems.append(f"{name}: no imageName (the operator's default)")
        if document["kind"] == "Kafka":
            if "image" not in spec.get("kafka", {}):
                problems.append(f"{name}: spec.kafka has no image (the operator's default)")
            for component in STRIMZI_COMPONENTS:
                if component in spec.get("entityOperator", {}) and "image" not in spec["entityOperator"][component]:
                    problems.append(f"{name}: spec.entityOperator.{component} has no image (the operator's default)")
    return problems


def test_every_image_is_pinned_by_digest(built: list[dict[str, Any]]) -> None:
    references = [ref for d in built for _, ref in image_references(d)]
    containers = [c for spec in pod_specs(built).values() for c in spec["containers"] + spec.get("initContainers", [])]
    assert len(references) >= len(containers) + 3  # every container, PostgreSQL, Kafka and the topic operator
    assert unpinned_images(built) == []


def test_an_image_by_tag_or_left_to_an_operator_is_found(built: list[dict[str, Any]]) -> None:
    documents = copy.deepcopy(built)
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example.se/minaintyg:1.0.0"
    kafka = next(d for d in documents if d["kind"] == "Kafka")
    del kafka["spec"]["kafka"]["image"]
    kafka["spec"]["entityOperator"]["userOperator"] = {}
    cluster = next(d for d in documents if d["kind"] == "Cluster")
    cluster["spec"]["imageName"] = "ghcr.io/cloudnative-pg/postgresql:15"
    problems = unpinned_images(documents)
    assert len(problems) == 4, problems
    assert any(p.endswith(": registry.example.se/minaintyg:1.0.0") for p in problems)
    assert any("spec.kafka has no image" in p for p in problems)
    assert any("userOperator has no image" in p for p in problems)
    assert any(p.endswith("/imageName: ghcr.io/cloudnative-pg/postgresql:15") for p in problems)


def _service_of(container: dict[str, Any]) -> str:
    return str(container["command"][0]).removeprefix("minaintyg-")


def test_each_service_connects_with_its_own_database_secret_only(built: list[dict[str, Any]]) -> None:
    """One role per service (issue #17): each Deployment's database URL is its service's own Secret, and no pod
    names another service's database Secret or the owner's (minaintyg-db-app)."""
    for name, spec in pod_specs(built).items():
        for container in spec["containers"]:
            service = _service_of(container)
            prefix = pgroles.role_of(f"{service.upper()}_").env_prefix
            secrets = {
                item["name"]: item["valueFrom"]["secretKeyRef"]["name"]
                for item in container.get("env", [])
                if "secretKeyRef" in item.get("valueFrom", {})
            }
            assert secrets.get(f"{prefix}DATABASE_URL") == f"minaintyg-db-{service}", name
            assert "DATABASE_URL" not in secrets, name
            database_secrets = {v for v in secrets.values() if v.startswith("minaintyg-db-")}
            assert database_secrets == {f"minaintyg-db-{service}"}, name
            volumes = {v.get("secret", {}).get("secretName") for v in spec.get("volumes", [])}
            assert not {v for v in volumes if v and v.startswith("minaintyg-db-")}, name


def test_the_database_has_each_services_role_owning_its_schema(built: list[dict[str, Any]]) -> None:
    (cluster,) = (d for d in built if d["kind"] == "Cluster")
    (database,) = (d for d in built if d["kind"] == "Database")
    services = {_service_of(c) for spec in pod_specs(built).values() for c in spec["containers"]}
    expected = [r for r in pgroles.ROLES if r.schema in services]  # the simulators do not run in Kubernetes
    assert {r.schema for r in expected} == services
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    assert sorted(roles) == sorted(r.role for r in expected)
    for role in expected:
        managed = roles[role.role]
        assert managed["login"] is True
        assert managed["passwordSecret"]["name"] == f"minaintyg-db-{role.schema}"
        assert not any(managed.get(flag) for flag in ("superuser", "createdb", "createrole", "replication",
                                                       "bypassrls", "inRoles")), role  # fmt: skip
    assert database["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    assert database["spec"]["name"] == cluster["spec"]["bootstrap"]["initdb"]["database"]
    assert {s["name"]: s["owner"] for s in database["spec"]["schemas"]} == {r.schema: r.role for r in expected}
