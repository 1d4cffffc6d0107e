"""The Helm chart: lint and template clean, values validated by values.schema.json, installed into the test
API server with least-privilege RBAC (checked with `kubectl auth can-i` as the operator's ServiceAccount)."""

from __future__ import annotations

import filecmp

import pytest
import yaml
from conftest import ensure_namespace
from kubecluster import KubeCluster
from kubernetes import client
from op_helpers import CHART, REPO

RELEASE_NS = "eventpipe-system"


def test_chart_ships_the_same_crds() -> None:
    for name in ("eventpipelines.eventpipe.io.yaml", "kopf-peering.yaml"):
        assert filecmp.cmp(REPO / "crds" / name, CHART / "crds" / name, shallow=False), name


def test_lint_is_clean(cluster: KubeCluster) -> None:
    out = cluster.helm("lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout
    namespaced = cluster.helm("lint", "--strict", str(CHART), "--set", "watchNamespaces={shop,analytics}")
    assert "0 chart(s) failed" in namespaced.stdout


def test_values_schema_refuses_bad_values(cluster: KubeCluster) -> None:
    bad = cluster.helm("template", "x", str(CHART), "--set", "replicaCount=0", check=False)
    assert bad.returncode != 0 and "replicaCount" in bad.stderr
    bad = cluster.helm("template", "x", str(CHART), "--set", "serviceAccount.roleArn=nope", check=False)
    assert bad.returncode != 0 and "roleArn" in bad.stderr


def test_template_namespaced_mode_uses_roles(cluster: KubeCluster) -> None:
    out = cluster.helm("template", "ep", str(CHART), "-n", RELEASE_NS, "--set", "watchNamespaces={shop,analytics}")
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    kinds = [(d["kind"], d["metadata"].get("namespace")) for d in docs]
    assert ("Role", "shop") in kinds and ("Role", "analytics") in kinds
    assert ("KopfPeering", "shop") in kinds
    assert not [d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "ep-eventpipe-operator"]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=shop" in args and "--namespace=analytics" in args


def test_install_into_the_api_server(cluster: KubeCluster, core: client.CoreV1Api) -> None:
    ensure_namespace(core, RELEASE_NS)
    role = "arn:aws:iam::123456789012:role/eventpipe-operator"
    cluster.helm("install", "ep", str(CHART), "-n", RELEASE_NS, "--set", f"serviceAccount.roleArn={role}",
                 "--set", "peering.name=eventpipe-helm")
    try:
        apps = client.AppsV1Api(core.api_client)
        dep = apps.read_namespaced_deployment("ep-eventpipe-operator", RELEASE_NS)
        container = dep.spec.template.spec.containers[0]
        assert container.command == ["python", "-m", "eventpipe_operator"]
        assert container.security_context.read_only_root_filesystem is True
        sa = core.read_namespaced_service_account("ep-eventpipe-operator", RELEASE_NS)
        assert sa.metadata.annotations["eks.amazonaws.com/role-arn"] == role
        custom = client.CustomObjectsApi(core.api_client)
        assert custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", "eventpipe-helm")
        status = cluster.helm("status", "ep", "-n", RELEASE_NS).stdout
        assert "STATUS: deployed" in status

        who = f"system:serviceaccount:{RELEASE_NS}:ep-eventpipe-operator"

        def can(verb: str, resource: str, ns: str = "shop") -> bool:
            out = cluster.kubectl("auth", "can-i", verb, resource, "-n", ns, "--as", who, check=False)
            return out.stdout.strip() == "yes"

        allowed = [("patch", "eventpipelines.eventpipe.io"), ("patch", "eventpipelines.eventpipe.io/status"),
                   ("create", "deployments.apps"), ("delete", "configmaps"), ("list", "pods"),
                   ("create", "events"), ("create", "networkpolicies.networking.k8s.io")]
        denied = [("get", "secrets"), ("delete", "eventpipelines.eventpipe.io"), ("create", "pods"),
                  ("create", "roles.rbac.authorization.k8s.io"), ("delete", "namespaces"),
                  ("patch", "nodes")]
        assert [a for a in allowed if not can(*a)] == []
        assert [d for d in denied if can(*d)] == []
    finally:
        cluster.helm("uninstall", "ep", "-n", RELEASE_NS)


@pytest.mark.parametrize("flag", ["rbac.readCatalogSecrets=true"])
def test_catalog_secret_access_is_opt_in(cluster: KubeCluster, flag: str) -> None:
    out = cluster.helm("template", "ep", str(CHART), "--set", flag)
    rules = [r for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "ClusterRole"
             for r in d["rules"]]
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]} in rules
