"""The Helm chart: lint and template clean, values validated by values.schema.json, installed into the test
API server with least-privilege RBAC (checked with `kubectl auth can-i` as the operator's ServiceAccount)."""

from __future__ import annotations

import filecmp
import json

import yaml
from kubernetes import client

from tests.helpers.kubecluster import KubeCluster
from tests.helpers.op_helpers import CHART, REPO, ensure_namespace

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


def _docs(cluster: KubeCluster, *sets: str) -> list[dict]:
    """Rendered documents; a value starting with "json:" is passed with --set-json (regexes keep backslashes)."""
    flags = [f"--set-json={x[5:]}" if x.startswith("json:") else f"--set={x}" for x in sets]
    out = cluster.helm("template", "ep", str(CHART), "-n", RELEASE_NS, *flags)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_rbac_is_namespaced_by_default(cluster: KubeCluster) -> None:
    """Default: the release namespace only (Roles, a KopfPeering, --namespace); cluster-wide is explicit."""
    docs = _docs(cluster)
    kinds = {(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs}
    assert ("Role", "ep-eventpipe-operator", RELEASE_NS) in kinds
    assert ("KopfPeering", "eventpipe", RELEASE_NS) in kinds
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")
                and d["metadata"]["name"] == "ep-eventpipe-operator"]
    cluster_reads = next(d for d in docs if d["kind"] == "ClusterRole")["rules"]
    assert all(r["verbs"] in (["list", "watch"],) for r in cluster_reads)  # no cluster-wide write at all
    args = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--namespace={RELEASE_NS}" in args
    wide = _docs(cluster, "rbac.clusterWide=true")
    assert [d for d in wide if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "ep-eventpipe-operator"]
    assert [d for d in wide if d["kind"] == "ClusterKopfPeering"]
    args = next(d for d in wide if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [a for a in args if a.startswith("--namespace")]
    both = cluster.helm("template", "ep", str(CHART), "--set", "rbac.clusterWide=true",
                        "--set", "watchNamespaces={shop}", check=False)
    assert both.returncode != 0 and "exclude each other" in both.stderr


def test_secrets_only_by_name(cluster: KubeCluster) -> None:
    docs = _docs(cluster)
    rules = [r for d in docs if d["kind"] in ("Role", "ClusterRole") for r in d["rules"]]
    assert not [r for r in rules if "secrets" in r["resources"]]
    named = _docs(cluster, "rbac.catalogSecretNames={shop-catalog}")
    rules = [r for d in named if d["kind"] == "Role" for r in d["rules"] if "secrets" in r["resources"]]
    assert rules == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["shop-catalog"],
                      "verbs": ["get"]}]


def test_chart_values_reach_the_pod(cluster: KubeCluster) -> None:
    """Overrides, global, securityContext, the operator PDB, ServiceMonitor labels and the URL allow-lists."""
    docs = _docs(cluster, "fullnameOverride=epo", "global.imageRegistry=registry.local",
                 "securityContext.runAsUser=20000", "metrics.serviceMonitor.enabled=true",
                 "metrics.serviceMonitor.labels.release=kps", "metrics.serviceMonitor.scrapeTimeout=5s",
                 "analyticsImage=registry.local/eventpipe/analytics:9",
                 r'json:operator.allowedCatalogUris=["https://glue\\.eu-west-1\\.amazonaws\\.com"]')
    dep = next(d for d in docs if d["kind"] == "Deployment")
    assert dep["metadata"]["name"] == "epo"
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("registry.local/ghcr.io/eventpipe/operator:")
    assert container["securityContext"]["runAsUser"] == 20000
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert json.loads(env["EVENTPIPE_OPERATOR_ALLOWED_CATALOG_URIS"]) == [r"https://glue\.eu-west-1\.amazonaws\.com"]
    assert env["EVENTPIPE_OPERATOR_LAG_METRIC"] == "eventpipe_consumer_lag_seconds"
    assert env["EVENTPIPE_OPERATOR_ANALYTICS_IMAGE"] == "registry.local/eventpipe/analytics:9"  # dag.json pods.image
    sm = next(d for d in docs if d["kind"] == "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kps" and sm["spec"]["endpoints"][0]["scrapeTimeout"] == "5s"
    pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert not [d for d in _docs(cluster, "replicaCount=1") if d["kind"] == "PodDisruptionBudget"]
    named = _docs(cluster, "nameOverride=pipes")
    assert next(d for d in named if d["kind"] == "Deployment")["metadata"]["name"] == "ep-pipes"


def test_values_schema_describes_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(node: dict, vals: object, path: str) -> list[str]:
        missing = [] if node.get("description") or not path else [path]
        if isinstance(vals, dict) and node.get("properties"):
            for key, value in vals.items():
                child = node["properties"].get(key)
                if child is None:
                    missing.append(f"{path}.{key} (not in the schema)")
                    continue
                missing.extend(walk(child, value, f"{path}.{key}".lstrip(".")))
        return missing

    assert walk(schema, values, "") == []


def test_notes_render_from_the_chart(cluster: KubeCluster) -> None:
    """NOTES.txt uses only what the installed chart has (no path into this repository)."""
    out = cluster.helm("install", "ep", str(CHART), "-n", RELEASE_NS, "--dry-run").stdout
    notes = out.split("NOTES:", 1)[1]
    assert "examples/" not in notes
    assert f"kubectl -n {RELEASE_NS} rollout status deployment/ep-eventpipe-operator" in notes
    assert "mode: dev" in notes and "Upgrading the CRD" in notes


def test_install_into_the_api_server(cluster: KubeCluster, core: client.CoreV1Api) -> None:
    ensure_namespace(core, RELEASE_NS)
    ensure_namespace(core, "shop")
    role = "arn:aws:iam::123456789012:role/eventpipe-operator"
    cluster.helm("install", "ep", str(CHART), "-n", RELEASE_NS, "--set", f"serviceAccount.roleArn={role}",
                 "--set", "peering.name=eventpipe-helm", "--set", "watchNamespaces={shop}")
    try:
        apps = client.AppsV1Api(core.api_client)
        dep = apps.read_namespaced_deployment("ep-eventpipe-operator", RELEASE_NS)
        container = dep.spec.template.spec.containers[0]
        assert container.command == ["python", "-m", "eventpipe_operator"]
        assert container.security_context.read_only_root_filesystem is True
        sa = core.read_namespaced_service_account("ep-eventpipe-operator", RELEASE_NS)
        assert sa.metadata.annotations["eks.amazonaws.com/role-arn"] == role
        custom = client.CustomObjectsApi(core.api_client)
        assert custom.get_namespaced_custom_object("kopf.dev", "v1", "shop", "kopfpeerings", "eventpipe-helm")
        status = cluster.helm("status", "ep", "-n", RELEASE_NS).stdout
        assert "STATUS: deployed" in status

        who = f"system:serviceaccount:{RELEASE_NS}:ep-eventpipe-operator"

        def can(verb: str, resource: str, ns: str = "shop") -> bool:
            out = cluster.kubectl("auth", "can-i", verb, resource, "-n", ns, "--as", who, check=False)
            return out.stdout.strip() == "yes"

        allowed = [("patch", "eventpipelines.eventpipe.io"), ("patch", "eventpipelines.eventpipe.io/status"),
                   ("create", "deployments.apps"), ("delete", "configmaps"), ("list", "pods"),
                   ("create", "events"), ("create", "networkpolicies.networking.k8s.io"),
                   ("create", "cronjobs.batch"), ("create", "persistentvolumeclaims"),
                   ("patch", "deployments.apps/scale")]
        denied = [("get", "secrets"), ("delete", "eventpipelines.eventpipe.io"), ("create", "pods"),
                  ("create", "roles.rbac.authorization.k8s.io"), ("delete", "namespaces"),
                  ("patch", "nodes")]
        assert [a for a in allowed if not can(*a)] == []
        assert [d for d in denied if can(*d)] == []
        # Namespaced: nothing in a namespace that is not watched.
        assert not can("create", "deployments.apps", "default")
        assert not can("list", "eventpipelines.eventpipe.io", "default")
    finally:
        cluster.helm("uninstall", "ep", "-n", RELEASE_NS)
