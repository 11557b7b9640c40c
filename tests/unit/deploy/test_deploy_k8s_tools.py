"""deploy/k8s as the real tools read it: kustomize builds it, every built object of a Kubernetes kind validates
against that version's published schema (kubernetes-validate, strict: unknown fields are errors), and the
security posture the manifests promise holds in what is applied."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZE = ROOT / ".cache" / "bin" / "kustomize"
KUBERNETES_VERSION = "1.33.0"
# Operator kinds: validated by their operators' admission (no schema of theirs is vendored here).
OPERATOR_KINDS = {"Kafka", "KafkaNodePool", "Cluster"}


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
    assert checked == len(built) - len(OPERATOR_KINDS)


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
