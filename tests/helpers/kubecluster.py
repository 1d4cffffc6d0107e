"""A real Kubernetes control plane for the tests, as controller-runtime's envtest runs one: etcd and
kube-apiserver on 127.0.0.1, no kubelet, scheduler or controller-manager (so no pods run and there is no garbage
collector). Binaries come from scripts/k8s-tools.sh (built from the Go module proxy, cached by version).

Certificates are generated here: a CA, the API server's serving certificate, an admin client certificate
(group system:masters) and the service-account signing key pair. Access is by client certificate through a
kubeconfig file, which kopf, the kubernetes client, kubectl and helm all read from KUBECONFIG.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.helpers.servers import REPO_ROOT, ServerProcess, free_port, start_process


def k8s_bin_dir() -> Path:
    """The cached binaries; builds them when missing (minutes on a fresh machine; CI's stage builds first)."""
    out = subprocess.run([str(REPO_ROOT / "scripts" / "k8s-tools.sh")], check=True, capture_output=True,
                         text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _cert(subject: x509.Name, key: rsa.RSAPrivateKey, issuer: x509.Name, issuer_key: rsa.RSAPrivateKey, *,
          ca: bool, server_names: list[str] | None = None, client: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
    else:
        usages = [x509.ExtendedKeyUsageOID.CLIENT_AUTH] if client else [x509.ExtendedKeyUsageOID.SERVER_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server_names:
        alt: list[x509.GeneralName] = []
        for name in server_names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def make_pki(pki: Path) -> None:
    pki.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = _name("eventpipe-test-ca")
    ca = _cert(ca_name, ca_key, ca_name, ca_key, ca=True)
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_key = _key()
    server = _cert(_name("kube-apiserver"), server_key, ca_name, ca_key, ca=False,
                   server_names=["127.0.0.1", "localhost", "kubernetes", "kubernetes.default",
                                 "kubernetes.default.svc", "10.0.0.1"])
    _write_key(pki / "apiserver.key", server_key)
    (pki / "apiserver.crt").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    admin_key = _key()
    admin = _cert(_name("eventpipe-admin", "system:masters"), admin_key, ca_name, ca_key, ca=False, client=True)
    _write_key(pki / "admin.key", admin_key)
    (pki / "admin.crt").write_bytes(admin.public_bytes(serialization.Encoding.PEM))
    sa_key = _key()
    _write_key(pki / "sa.key", sa_key)
    (pki / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


@dataclass
class KubeCluster:
    bin_dir: Path
    workdir: Path
    server: str
    kubeconfig: Path
    etcd: ServerProcess
    apiserver: ServerProcess

    def kubectl(self, *args: str, check: bool = True, input_text: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
                             capture_output=True, text=True, input=input_text, timeout=timeout)
        if check and out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed ({out.returncode}): {out.stderr}{out.stdout}")
        return out

    def wait_crd_established(self, name: str, timeout: float = 60) -> None:
        """Poll until the CRD's Established condition is True. Not `kubectl wait --for=condition=Established`
        nor a jsonpath filter: right after an apply the CRD's conditions are null, and kubectl 1.34 then fails
        ("accessor error", "<nil> is not array or slice") instead of waiting; the JSON is read here instead."""
        deadline = time.monotonic() + timeout
        status = "no conditions yet"
        while time.monotonic() < deadline:
            crd = json.loads(self.kubectl("get", "crd", name, "-o", "json").stdout)
            conditions = crd.get("status", {}).get("conditions") or []
            established = [c.get("status") for c in conditions if c.get("type") == "Established"]
            status = established[0] if established else "no Established condition yet"
            if status == "True":
                return
            time.sleep(0.2)
        raise AssertionError(f"CRD {name} not Established after {timeout}s (last status {status!r})")

    def helm(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        env = {"KUBECONFIG": str(self.kubeconfig), "HOME": str(self.workdir), "PATH": "/usr/bin:/bin",
               "HELM_CACHE_HOME": str(self.workdir / "helm-cache"),
               "HELM_CONFIG_HOME": str(self.workdir / "helm-config"),
               "HELM_DATA_HOME": str(self.workdir / "helm-data")}
        out = subprocess.run([str(self.bin_dir / "helm"), *args], capture_output=True, text=True, env=env,
                             timeout=timeout)
        if check and out.returncode != 0:
            raise RuntimeError(f"helm {' '.join(args)} failed ({out.returncode}): {out.stderr}{out.stdout}")
        return out

    def stop(self) -> None:
        self.apiserver.stop()
        self.etcd.stop()


def _wait_ready(server: str, pki: Path, proc: ServerProcess, timeout: float = 120) -> None:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"kube-apiserver exited with {proc.proc.returncode}:\n{proc.log_tail(60)}")
        try:
            with urllib.request.urlopen(f"{server}/readyz", context=ctx, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise TimeoutError(f"kube-apiserver not ready in {timeout}s ({last}):\n{proc.log_tail(60)}")


def start_cluster(workdir: Path) -> KubeCluster:
    bin_dir = k8s_bin_dir()
    pki = workdir / "pki"
    make_pki(pki)

    client_port, peer_port = free_port(), free_port()
    etcd = start_process("etcd", [
        str(bin_dir / "etcd"), "--name", "default", "--data-dir", str(workdir / "etcd"),
        "--listen-client-urls", f"http://127.0.0.1:{client_port}",
        "--advertise-client-urls", f"http://127.0.0.1:{client_port}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
        "--unsafe-no-fsync", "--log-level", "warn",
    ], client_port, timeout=60)

    port = free_port()
    try:
        apiserver = start_process("kube-apiserver", [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{client_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            f"--cert-dir={workdir / 'certs'}",
            "--v=1",
        ], port, timeout=120)
    except Exception:
        etcd.stop()
        raise
    server = f"https://127.0.0.1:{port}"
    try:
        _wait_ready(server, pki, apiserver)
    except Exception:
        apiserver.stop()
        etcd.stop()
        raise

    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": server,
                                                  "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": "admin", "user": {"client-certificate": str(pki / "admin.crt"),
                                             "client-key": str(pki / "admin.key")}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
    }))
    return KubeCluster(bin_dir, workdir, server, kubeconfig, etcd, apiserver)
