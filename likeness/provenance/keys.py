"""Local signing keys: a root CA, an ES256 signing certificate, and a watermark secret.

Layout of `keys_dir()` (folder 0700, every file 0600):

    root.pem           the trust anchor (self-signed CA certificate); verifiers get a
                       copy with `likeness keys export-trust`
    signer.pem         the ES256 signing certificate, issued by the root
    signer.key.pem     its private key, PKCS#8, encrypted when a passphrase is set
    watermark.secret   32 random bytes; the watermark key is derived from it (HKDF)

The root's private key is used once, to issue the signing certificate, and then
dropped: nothing here needs to issue another certificate (`keys init --force` makes a
new pair), and a key that is not on disk cannot leak.

Private material never leaves this module except inside `SigningKeys` and
`WatermarkKey`, whose reprs hide it, and no error message quotes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from likeness.config import keys_dir
from likeness.errors import ProvenanceError, SetupError

PASSPHRASE_ENV = "LIKENESS_KEY_PASSPHRASE"

ROOT_CERT = "root.pem"
SIGNER_CERT = "signer.pem"
SIGNER_KEY = "signer.key.pem"
WATERMARK_SECRET = "watermark.secret"
ALL_FILES = (ROOT_CERT, SIGNER_CERT, SIGNER_KEY, WATERMARK_SECRET)

# HKDF "info" labels: changing one gives an unrelated key, so they are versioned.
_WATERMARK_INFO = b"likeness watermark key v1"
_KEY_ID_INFO = b"likeness watermark key id v1"

ROOT_YEARS = 20
SIGNER_YEARS = 5

# C2PA validators accept only some extended key usages for claim signing; the SDK we
# use (c2pa-rs 0.91) rejects documentSigning (1.3.6.1.5.5.7.3.36) with "certificate
# missing required EKU" but accepts emailProtection, so the signer carries that.
_EKU_EMAIL_PROTECTION = "1.3.6.1.5.5.7.3.4"


@dataclass(frozen=True)
class KeyInfo:
    """What `likeness keys show` prints: paths and public facts, never private material."""

    directory: Path
    root_cert: Path
    signer_cert: Path
    signer_subject: str
    root_subject: str
    root_sha256: str
    signer_sha256: str
    not_after: str
    encrypted: bool
    key_id: int

    def to_dict(self) -> dict:
        return {
            "directory": str(self.directory),
            "root_cert": str(self.root_cert),
            "signer_cert": str(self.signer_cert),
            "signer_subject": self.signer_subject,
            "root_subject": self.root_subject,
            "root_sha256": self.root_sha256,
            "signer_sha256": self.signer_sha256,
            "not_after": self.not_after,
            "encrypted": self.encrypted,
            "key_id": self.key_id,
        }


@dataclass(frozen=True)
class SigningKeys:
    """The certificate chain (signer, then root) and the decrypted private key, as PEM.

    c2pa-python takes the key as unencrypted PEM text, so it is held in memory here;
    `repr=False` keeps it out of tracebacks, logs and debug prints.
    """

    chain_pem: bytes
    root_pem: bytes
    private_key_pem: bytes = field(repr=False)


@dataclass(frozen=True)
class WatermarkKey:
    """The derived watermark key and its public 16-bit id (carried in the payload)."""

    secret: bytes = field(repr=False)
    key_id: int


def _passphrase(passphrase: str | None) -> str | None:
    """None -> LIKENESS_KEY_PASSPHRASE (if set); "" -> no passphrase."""
    if passphrase is None:
        passphrase = os.environ.get(PASSPHRASE_ENV)
    return passphrase or None


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` 0600 from the first byte on (never chmod after writing)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb", closefd=True) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "likeness (local)"),
        ]
    )


def _make_chain() -> tuple[bytes, bytes, object]:
    """A fresh root CA and signing certificate; returns (root PEM, signer PEM, signer key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ObjectIdentifier

    now = dt.datetime.now(dt.UTC)
    # Backdate a little: clocks on the verifying machine may lag ours.
    start = now - dt.timedelta(hours=1)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("likeness local root CA")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=365 * ROOT_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name("likeness signer"))
        .issuer_name(root_name)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=365 * SIGNER_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ObjectIdentifier(_EKU_EMAIL_PROTECTION)]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )
    encoding = serialization.Encoding.PEM
    return root.public_bytes(encoding), signer.public_bytes(encoding), signer_key


def init_keys(passphrase: str | None = None, force: bool = False) -> KeyInfo:
    """Make a new root CA, signing certificate and watermark secret under `keys_dir()`.

    `passphrase`: None reads LIKENESS_KEY_PASSPHRASE, "" means none. Refuses to replace
    existing keys unless `force`; all new files are written beside the old ones first
    and then renamed, so a failure part-way leaves the old set usable.
    """
    from cryptography.hazmat.primitives import serialization

    directory = keys_dir()
    existing = [name for name in ALL_FILES if (directory / name).exists()]
    if existing and not force:
        raise ProvenanceError(f"keys already exist in {directory}; use --force to replace them")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)  # an existing folder may have been made wider
    except OSError as err:
        raise ProvenanceError(f"cannot create {directory}: {err.strerror}") from err

    secret = _passphrase(passphrase)
    root_pem, signer_pem, signer_key = _make_chain()
    algorithm = (
        serialization.BestAvailableEncryption(secret.encode("utf-8"))
        if secret
        else serialization.NoEncryption()
    )
    key_pem = signer_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, algorithm
    )
    contents = {
        ROOT_CERT: root_pem,
        SIGNER_CERT: signer_pem,
        SIGNER_KEY: key_pem,
        WATERMARK_SECRET: secrets.token_bytes(32),
    }
    tag = secrets.token_hex(4)
    staged: list[tuple[Path, Path]] = []
    try:
        for name, data in contents.items():
            tmp = directory / f".{name}.{tag}.tmp"
            _write_private(tmp, data)
            staged.append((tmp, directory / name))
        for tmp, final in staged:
            os.replace(tmp, final)
    except OSError as err:
        raise ProvenanceError(f"cannot write keys in {directory}: {err.strerror}") from err
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return show()


def _require(name: str) -> Path:
    path = keys_dir() / name
    if not path.is_file():
        raise SetupError(f"no signing keys in {keys_dir()}: run `likeness keys init`")
    return path


def _read(name: str) -> bytes:
    path = _require(name)
    try:
        return path.read_bytes()
    except OSError as err:
        raise SetupError(f"cannot read {path}: {err.strerror}") from err


def _load_cert(name: str):
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(_read(name))
    except ValueError as err:
        raise SetupError(
            f"{keys_dir() / name} is not a PEM certificate: run `likeness keys init --force`"
        ) from err


def keys_exist() -> bool:
    return all((keys_dir() / name).is_file() for name in ALL_FILES)


def load_signing(passphrase: str | None = None) -> SigningKeys:
    """The chain and the decrypted private key for c2pa; fails with a one-line reason."""
    from cryptography.hazmat.primitives import serialization

    signer = _load_cert(SIGNER_CERT)
    root_pem = _read(ROOT_CERT)
    _load_cert(ROOT_CERT)
    if signer.not_valid_after_utc <= dt.datetime.now(dt.UTC):
        raise ProvenanceError(
            f"the signing certificate expired on {signer.not_valid_after_utc:%Y-%m-%d}: "
            "run `likeness keys init --force`"
        )
    key_bytes = _read(SIGNER_KEY)
    secret = _passphrase(passphrase)
    # The messages below are ours: cryptography's own could, in principle, quote input.
    try:
        key = serialization.load_pem_private_key(
            key_bytes, password=secret.encode("utf-8") if secret else None
        )
    except TypeError:
        if secret:  # a passphrase was given for a key that has none
            raise ProvenanceError(
                "the signing key has no passphrase: unset LIKENESS_KEY_PASSPHRASE"
            ) from None
        raise ProvenanceError(
            f"the signing key is encrypted: set {PASSPHRASE_ENV} to its passphrase"
        ) from None
    except ValueError:
        if secret:
            raise ProvenanceError("wrong passphrase for the signing key") from None
        raise ProvenanceError(
            f"{keys_dir() / SIGNER_KEY} is not a readable private key: "
            "run `likeness keys init --force`"
        ) from None
    plain = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer_pem = _read(SIGNER_CERT)
    return SigningKeys(chain_pem=signer_pem + root_pem, root_pem=root_pem, private_key_pem=plain)


def _hkdf(secret: bytes, info: bytes, length: int = 32) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


def watermark_key() -> WatermarkKey:
    """The watermark key, derived from the stored secret so that the secret itself is
    never handed to the embedder; key_id is 16 bits of a hash of the derived key."""
    secret = _read(WATERMARK_SECRET)
    if len(secret) != 32:
        raise SetupError(
            f"{keys_dir() / WATERMARK_SECRET} is damaged: run `likeness keys init --force`"
        )
    derived = _hkdf(secret, _WATERMARK_INFO)
    key_id = int.from_bytes(hashlib.sha256(_KEY_ID_INFO + derived).digest()[:2], "big")
    return WatermarkKey(secret=derived, key_id=key_id)


def _fingerprint(cert) -> str:
    from cryptography.hazmat.primitives import hashes

    return cert.fingerprint(hashes.SHA256()).hex()


def show() -> KeyInfo:
    signer = _load_cert(SIGNER_CERT)
    root = _load_cert(ROOT_CERT)
    key_head = _read(SIGNER_KEY)[:64]
    return KeyInfo(
        directory=keys_dir(),
        root_cert=keys_dir() / ROOT_CERT,
        signer_cert=keys_dir() / SIGNER_CERT,
        signer_subject=signer.subject.rfc4514_string(),
        root_subject=root.subject.rfc4514_string(),
        root_sha256=_fingerprint(root),
        signer_sha256=_fingerprint(signer),
        not_after=f"{signer.not_valid_after_utc:%Y-%m-%d}",
        encrypted=b"ENCRYPTED" in key_head,
        key_id=watermark_key().key_id,
    )


def export_trust(out: Path) -> Path:
    """Write the root certificate (the trust anchor verifiers pass to `--trust`)."""
    from likeness.fsio import atomic_output

    _load_cert(ROOT_CERT)  # refuse to export something that is not a certificate
    data = _read(ROOT_CERT)
    with atomic_output(Path(out)) as tmp:
        tmp.write_bytes(data)
    return Path(out)
