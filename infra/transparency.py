"""The transparency log's signing key and its signed tree heads.

One Ed25519 key per deployment, kept outside the event store in a file (PKCS#8 PEM, mode 0600)
that `JINDOU_TRANSPARENCY_KEY_FILE` names; by default beside the SQLite database
(`jindou.db.signing-key`), or `./jindou-signing.key` for PostgreSQL. A deployment without the
file makes one on first use; `memory://` without a named file signs with a key that lives as long
as the process. Keys retired by a rotation stay listed (`JINDOU_TRANSPARENCY_RETIRED_KEYS`, their
base64 public keys), so heads they signed stay checkable. See docs/operations.md.

A head's timestamp is when the tree's last event was recorded, so the head of a given size is
always the same signed statement, whenever and however often it is asked for.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infra.settings import Settings, persistence_env
from projections import transparency
from projections.store import Cursor
from tools.verify_jindou import key_id_of, tree_head_message

ALGORITHM = "ed25519"
POSTGRES_KEY_FILE = "./jindou-signing.key"
SQLITE_KEY_FILE_SUFFIX = ".signing-key"
EMPTY_TREE_TIMESTAMP = "1970-01-01T00:00:00+00:00"  # no event recorded yet
KEY_FILE_MODE = 0o600


class SigningKeyError(RuntimeError):
    pass


def key_file_for(settings: Settings) -> Path | None:
    if settings.transparency_key_file:
        return Path(settings.transparency_key_file)
    if settings.backend == "memory":
        return None
    if settings.backend == "sqlite":
        return Path(persistence_env(settings.database_url)["SQLITE_DBNAME"] + SQLITE_KEY_FILE_SUFFIX)
    return Path(POSTGRES_KEY_FILE)


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key_view(raw: bytes) -> dict[str, Any]:
    return {"key_id": key_id_of(raw), "algorithm": ALGORITHM, "public_key": base64.b64encode(raw).decode()}


class TreeSigner:
    def __init__(self, private_key: Ed25519PrivateKey, retired_public_keys: tuple[bytes, ...] = ()) -> None:
        self._private_key = private_key
        self.public_key = _raw(private_key.public_key())
        self.key_id = key_id_of(self.public_key)
        self.retired_public_keys = tuple(k for k in retired_public_keys if k != self.public_key)

    def key_view(self) -> dict[str, Any]:
        """GET /v1/public/transparency/key: the current key, and the retired ones."""
        return _key_view(self.public_key) | {"retired": [_key_view(raw) for raw in self.retired_public_keys]}

    def sign(self, tree_size: int, root_hash: str, timestamp: str) -> dict[str, Any]:
        signature = self._private_key.sign(tree_head_message(tree_size, root_hash, timestamp))
        return {"tree_size": tree_size, "root_hash": root_hash, "timestamp": timestamp, "key_id": self.key_id,
                "signature": base64.b64encode(signature).decode()}


def retired_keys(settings: Settings) -> tuple[bytes, ...]:
    try:
        keys = tuple(base64.b64decode(text.strip(), validate=True) for text in settings.transparency_retired_keys)
    except ValueError as exc:
        raise SigningKeyError(f"JINDOU_TRANSPARENCY_RETIRED_KEYS holds something that is not base64 ({exc})") from exc
    if any(len(key) != 32 for key in keys):
        raise SigningKeyError("JINDOU_TRANSPARENCY_RETIRED_KEYS lists raw Ed25519 public keys: 32 bytes each, base64")
    return keys


def _read_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise SigningKeyError(f"cannot read the transparency signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a key that is not Ed25519")
    return key


def _create_key(path: Path) -> Ed25519PrivateKey:
    """A new key, written only if no process wrote one first (then that one is used)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
        file.flush()
        os.fsync(file.fileno())
    return key


def load_or_create_signer(settings: Settings) -> TreeSigner:
    path = key_file_for(settings)
    if path is None:
        key = Ed25519PrivateKey.generate()
    else:
        key = _read_key(path) if path.exists() else _create_key(path)
    return TreeSigner(key, retired_keys(settings))


def known_public_keys(settings: Settings) -> dict[str, bytes]:
    """Key id → raw public key of every key this deployment signs or signed with (never creates one)."""
    path = key_file_for(settings)
    keys = {key_id_of(raw): raw for raw in retired_keys(settings)}
    if path is not None and path.exists():
        current = _raw(_read_key(path).public_key())
        keys[key_id_of(current)] = current
    return keys


def signed_head(cursor: Cursor, signer: TreeSigner, tree_size: int) -> dict[str, Any]:
    """The signed head of the tree of the first `tree_size` events (0 ≤ tree_size ≤ the tree's size)."""
    if tree_size == 0:
        return signer.sign(0, transparency.root_hash(cursor, 0), EMPTY_TREE_TIMESTAMP)
    last = transparency.leaf_at_index(cursor, tree_size - 1)
    assert last is not None, tree_size
    return signer.sign(tree_size, transparency.root_hash(cursor, tree_size), last.recorded_at)
