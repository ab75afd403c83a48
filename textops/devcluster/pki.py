"""Certificates and keys for the dev cluster, made in memory with `cryptography`.

One job: produce the PEM material a Kubernetes control plane needs (a CA, the apiserver's
serving certificate, client certificates whose subject carries the user and groups that RBAC
sees, the service-account signing key pair) and write it to a folder. Nothing here starts a
process or touches the network, so it is cheap to test on its own.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class KeyPair:
    """A certificate with its private key, both PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256: accepted by Go's TLS and by the service-account signer (ES256), and fast to make.
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def make_ca(common_name: str = "textops-dev-ca") -> KeyPair:
    """Return a self-signed CA allowed to sign certificates."""
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue(
    ca: KeyPair,
    common_name: str,
    *,
    organizations: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> KeyPair:
    """Sign a leaf certificate with `ca`.

    For a client certificate the apiserver takes CN as the user name and each O as a group,
    so `organizations=("system:masters",)` makes a cluster admin.
    """
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("the CA key must be an EC key made by make_ca()")
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def service_account_keys() -> tuple[bytes, bytes]:
    """Return (private key PEM, public key PEM) for signing service-account tokens."""
    key = _new_key()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _key_pem(key), public


# Client identities of the control-plane components: (file stem, CN, groups).
# The CNs are the users that Kubernetes' bootstrap RBAC policy already grants rights to.
CLIENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("admin", "textops-admin", ("system:masters",)),
    ("controller-manager", "system:kube-controller-manager", ()),
    ("scheduler", "system:kube-scheduler", ()),
    ("kwok", "textops-kwok", ("system:masters",)),
    # the real node: the Node authorizer and NodeRestriction know system:node:<name>
    ("kubelet", "system:node:textops-node", ("system:nodes",)),
    ("kube-proxy", "system:kube-proxy", ()),  # bound to system:node-proxier by bootstrap RBAC
    # the apiserver's identity towards the kubelet (logs, exec, port-forward)
    ("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",)),
    # dev-cluster helpers that read the whole cluster: CoreDNS, the volume provisioner
    ("coredns", "textops-coredns", ("system:masters",)),
    ("provisioner", "textops-provisioner", ("system:masters",)),
)
# The first address of the service range: the `kubernetes` Service pods reach the API by.
KUBERNETES_SERVICE_IP = "10.96.0.1"


@dataclass(frozen=True)
class Pki:
    """Paths of the files written by write_pki()."""

    dir: Path

    def path(self, stem: str, ext: str = "crt") -> Path:
        return self.dir / f"{stem}.{ext}"

    @property
    def ca_cert(self) -> Path:
        return self.path("ca")

    @property
    def ca_key(self) -> Path:
        return self.path("ca", "key")


def _write(path: Path, data: bytes, private: bool) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def write_pki(directory: Path, node_ip: str | None = None) -> Pki:
    """Write a fresh CA, apiserver serving pair, client pairs, front-proxy pair and SA keys.

    With `node_ip` (a real node), the apiserver's certificate also names that address and the
    `kubernetes` Service's, and the kubelet gets a serving certificate for it."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca()
    pki = Pki(directory)
    _write(pki.ca_cert, ca.cert_pem, False)
    _write(pki.ca_key, ca.key_pem, True)
    serving = issue(
        ca,
        "kube-apiserver",
        server=True,
        dns_names=(
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ),
        ip_addresses=("127.0.0.1", "::1", *((node_ip, KUBERNETES_SERVICE_IP) if node_ip else ())),
    )
    _write(pki.path("apiserver"), serving.cert_pem, False)
    if node_ip:
        kubelet = issue(ca, "textops-node", server=True, ip_addresses=(node_ip,))
        _write(pki.path("kubelet-serving"), kubelet.cert_pem, False)
        _write(pki.path("kubelet-serving", "key"), kubelet.key_pem, True)
    _write(pki.path("apiserver", "key"), serving.key_pem, True)
    for stem, cn, groups in CLIENTS:
        pair = issue(ca, cn, organizations=groups, client=True)
        _write(pki.path(stem), pair.cert_pem, False)
        _write(pki.path(stem, "key"), pair.key_pem, True)
    # Aggregation layer: a separate CA for the apiserver's front-proxy client, so that
    # components delegating authentication (scheduler, controller-manager) find the
    # request-header CA they look for, and no ordinary client cert can assert headers.
    proxy_ca = make_ca("textops-front-proxy-ca")
    _write(pki.path("front-proxy-ca"), proxy_ca.cert_pem, False)
    _write(pki.path("front-proxy-ca", "key"), proxy_ca.key_pem, True)
    proxy = issue(proxy_ca, "front-proxy-client", client=True)
    _write(pki.path("front-proxy-client"), proxy.cert_pem, False)
    _write(pki.path("front-proxy-client", "key"), proxy.key_pem, True)
    private, public = service_account_keys()
    _write(pki.path("sa", "key"), private, True)
    _write(pki.path("sa", "pub"), public, False)
    return pki
