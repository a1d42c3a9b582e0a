"""The certificate rules of the ``tls`` stack key: PEM that parses, a key that fits, names it covers.

Pure functions in the style of :mod:`components.config.rules` (``value -> problem sentence | None``,
never a key path, never a secret), plus :func:`certificate_warnings`, which the program turns into
``pulumi.log.warn`` lines at preview. The loader (:mod:`components.config.stack`) calls them and
names the key path.

Why here and not in ``rules``: they need ``cryptography`` (the ``stack`` extra), which a machine
with only the ``devpi-lifecycle`` CLI does not have. It is imported inside the functions, so this
module imports anywhere; :func:`crypto_available` tells the loader whether the checks can run (the
CLI's partial load skips them without it; ``pulumi preview`` always has it).

Sentences about a private key never contain any of its text: a key that does not parse is
described by what is wrong with it, not by what it says.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from components.config.defaults import CERT_WARN_DAYS, PROJECT

if TYPE_CHECKING:
    from cryptography import x509

    from components.config.model import TlsConfig

__all__ = [
    "ca_bundle_problem",
    "certificate_chain_problem",
    "certificate_names",
    "certificate_not_after",
    "certificate_warnings",
    "chain_trust_problem",
    "covers_name",
    "crypto_available",
    "key_match_problem",
    "names_coverage_problem",
    "pem_summary",
    "private_key_problem",
    "validity_problem",
]

_PRIVATE = "PRIVATE KEY"
_KEY_FIX = "keep only the certificates here; the key belongs in the secret tlsPrivateKey"


def crypto_available() -> bool:
    """Whether ``cryptography`` is importable (always with the ``stack`` extra)."""
    try:
        import cryptography.x509  # noqa: F401
    except ImportError:
        return False
    return True


def pem_summary(pem: object) -> str:
    """What a message may show instead of a PEM value: its shape, never its text. Certificates are
    public, but a chain pasted with its key would otherwise print the key."""
    if not isinstance(pem, str):
        return f"a {type(pem).__name__}"
    if _PRIVATE in pem:
        return "[secret]"
    count = pem.count("-----BEGIN CERTIFICATE-----")
    if count:
        return f"PEM text with {count} certificate block{'s' if count != 1 else ''}"
    return f"text of {len(pem)} characters without a PEM certificate"


# ---------------------------------------------------------------------------------------- parsing
def _certificates(pem: object) -> list[x509.Certificate] | None:
    """The certificates of a PEM text, in order; None when it is not one or more certificates."""
    from cryptography import x509

    if not isinstance(pem, str) or "-----BEGIN CERTIFICATE-----" not in pem:
        return None
    try:
        return list(x509.load_pem_x509_certificates(pem.encode()))
    except ValueError:
        return None


def _leaf(chain_pem: str) -> x509.Certificate:
    certs = _certificates(chain_pem)
    if not certs:
        raise ValueError("not a certificate chain (check certificate_chain_problem first)")
    return certs[0]


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _private_key(pem: str) -> Any:
    """The unencrypted private key of ``pem``; ``TypeError`` when it needs a passphrase, ``ValueError``
    when it is not a key. cryptography's own messages are not passed on (they never quote the key,
    but nothing here relies on that)."""
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem.encode(), password=None)


def _public_der(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(public_key.public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo))


# ------------------------------------------------------------------------------------------ rules
def certificate_chain_problem(pem: object) -> str | None:
    """A PEM certificate chain, server (leaf) certificate first, then its intermediates."""
    if isinstance(pem, str) and _PRIVATE in pem:
        return f"contains a private key, which must never be plain config: {_KEY_FIX}"
    certs = _certificates(pem)
    if not certs:
        return ("must be the PEM certificate chain (one or more -----BEGIN CERTIFICATE----- blocks, the "
                "server's certificate first, then the intermediates)")
    from cryptography import x509

    try:
        constraints = certs[0].extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None
    if constraints.ca:
        return (f"starts with a CA certificate ({_subject(certs[0])}): put the server's own certificate "
                "first, then the intermediates")
    return None


def ca_bundle_problem(pem: object) -> str | None:
    """The private CA clients must trust: one or more PEM certificates."""
    if isinstance(pem, str) and _PRIVATE in pem:
        return "contains a private key, which must never be plain config: a CA bundle holds certificates only"
    if not _certificates(pem):
        return "must be one or more PEM certificates (-----BEGIN CERTIFICATE----- blocks) of the CA"
    return None


def private_key_problem(pem: object) -> str | None:
    """The proxy's key: unencrypted PEM (nginx reads it unattended; it stays a Pulumi secret), RSA of
    at least 2048 bits or EC."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if not isinstance(pem, str) or _PRIVATE not in pem:
        return "must be a PEM private key (the unencrypted key file of the certificate, PKCS#8 or RSA/EC)"
    if "ENCRYPTED" in pem:
        return ("is protected by a passphrase, which nginx cannot type: store it decrypted "
                "(openssl pkey -in key.pem -out plain.pem); Pulumi keeps it encrypted as a secret")
    try:
        key = _private_key(pem)
    except TypeError:
        return ("is protected by a passphrase, which nginx cannot type: store it decrypted "
                "(openssl pkey -in key.pem -out plain.pem); Pulumi keeps it encrypted as a secret")
    except (ValueError, UnsupportedAlgorithm):
        return "is not a readable PEM private key (check that the whole file was stored, unmodified)"
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            return f"is an RSA key of {key.key_size} bits: use at least 2048 bits"
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    return f"is a {type(key).__name__.removeprefix('_')} key: use an RSA (2048 bits or more) or EC key"


def key_match_problem(chain_pem: str, key_pem: str) -> str | None:
    """The key is the private half of the leaf certificate (else nginx refuses to start)."""
    leaf = _leaf(chain_pem)
    if _public_der(_private_key(key_pem).public_key()) != _public_der(leaf.public_key()):
        return (f"does not match the certificate ({_subject(leaf)}): its public half differs from the "
                "certificate's; store the key that was used for this certificate's request")
    return None


def certificate_names(chain_pem: str) -> tuple[str, ...]:
    """The names the leaf certificate is valid for: DNS and IP subjectAltNames (clients ignore the CN)."""
    from cryptography import x509

    try:
        san = _leaf(chain_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return (*san.get_values_for_type(x509.DNSName),
            *(str(ip) for ip in san.get_values_for_type(x509.IPAddress)))


def _dns_matches(pattern: str, name: str) -> bool:
    """RFC 6125 matching: case-insensitive, a wildcard only as the whole left-most label, for one label."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):
        first, _, rest = name.partition(".")
        return bool(first) and rest == pattern[2:]
    return pattern == name


def covers_name(chain_pem: str, name: str) -> bool:
    """Whether clients reaching ``name`` (host name or IP) accept the leaf certificate."""
    try:
        ip = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        ip = None
    for san in certificate_names(chain_pem):
        if ip is not None:
            try:
                if ipaddress.ip_address(san) == ip:
                    return True
            except ValueError:
                continue
        elif _dns_matches(san, name):
            return True
    return False


def names_coverage_problem(chain_pem: str, names: Sequence[str]) -> str | None:
    """Every name clients use is covered by the certificate's subjectAltNames."""
    covered = certificate_names(chain_pem)
    for name in names:
        if not covers_name(chain_pem, name):
            if not covered:
                return (f"includes {name!r}, but the certificate has no subjectAltName (clients ignore the "
                        "CN): issue it with a subjectAltName for every name")
            return (f"includes {name!r}, which the certificate does not cover (it covers: "
                    f"{', '.join(covered)}): issue a certificate for every name, or remove the name")
    return None



def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def validity_problem(chain_pem: str, now: dt.datetime) -> str | None:
    """Every certificate of the chain is valid at ``now``: not expired, not yet-to-come."""
    now = _utc(now)
    for position, cert in enumerate(_certificates(chain_pem) or []):
        which = "the certificate" if position == 0 else f"chain certificate {position + 1} ({_subject(cert)})"
        if cert.not_valid_after_utc <= now:
            return f"has expired: {which} was valid until {_iso(cert.not_valid_after_utc)}; renew it"
        if cert.not_valid_before_utc > now:
            return (f"is not valid yet: {which} is valid from {_iso(cert.not_valid_before_utc)} on "
                    "(check the clock of the machine that issued it, or wait)")
    return None


def chain_trust_problem(chain_pem: str, bundle_pem: str) -> str | None:
    """The leaf leads, issuer by issuer through the chain, to a CA of the bundle (a name and signature
    check with ``verify_directly_issued_by``; no policy checks: those are the clients' job)."""
    chain = _certificates(chain_pem) or []
    anchors = _certificates(bundle_pem) or []
    anchor_der = {c.tbs_certificate_bytes for c in anchors}
    candidates = [*chain[1:], *anchors]
    current = chain[0]
    for _ in range(len(candidates) + 1):
        if current.tbs_certificate_bytes in anchor_der:
            return None
        issuer = next((c for c in candidates if c is not current and _issued_by(current, c)), None)
        if issuer is None:
            break
        if issuer.tbs_certificate_bytes in anchor_der:
            return None
        current = issuer
    return (f"is not signed by a CA of tls.caBundle (the chain ends at {_subject(current)}, issued by "
            f"{current.issuer.rfc4514_string()}): add the issuing CA to caBundle or fix the chain")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def certificate_not_after(chain_pem: str) -> str:
    """The leaf's expiry as ISO 8601 UTC (``2026-01-31T12:00:00Z``), kept in ``TlsConfig.not_after``."""
    return _iso(_leaf(chain_pem).not_valid_after_utc)


def certificate_warnings(tls: TlsConfig, now: dt.datetime) -> list[str]:
    """Warnings for ``pulumi.log.warn``: the certificate expires within ``CERT_WARN_DAYS`` days.

    Pure (``now`` is passed in) and PEM-free: it reads ``tls.not_after``, which the loader filled.
    An expired certificate is an error at load time; it is reported here too should ``now`` be later.
    """
    if tls.not_after is None:
        return []
    not_after = _utc(dt.datetime.fromisoformat(tls.not_after))
    left = not_after - _utc(now)
    fix = ("renew it, then `pulumi config set --path tls.certificate < chain.pem` (and "
           "`pulumi config set --secret tlsPrivateKey < key.pem` for a new key) and `pulumi up`")
    if left <= dt.timedelta(0):
        return [f"{PROJECT}:tls.certificate expired on {tls.not_after}: {fix}"]
    if left < dt.timedelta(days=CERT_WARN_DAYS):
        days = left.days
        when = "within a day" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
        return [f"{PROJECT}:tls.certificate expires {when} (on {tls.not_after}, warning from "
                f"{CERT_WARN_DAYS} days before): {fix}"]
    return []
