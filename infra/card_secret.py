"""The deployment's card secret: card codes are HMAC-derived from it and each card's nonce, so a
live card can be printed again while the event store holds only the nonce and the code's hash.

`JINDOU_CARD_SECRET` (hex, at least 32 bytes) keeps it out of the database, which is what a
production deployment should do; without it the first process makes one and keeps it in the
read-model database (`jindou_secrets`), where every later process finds the same one.
"""

from __future__ import annotations

import secrets

from infra.settings import SettingsError
from projections.store import ReadStore

CARD_SECRET_BYTES_MIN = 32
SECRET_NAME = "card_secret"
TABLES = ("CREATE TABLE IF NOT EXISTS jindou_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",)


def configured_secret(value: str | None) -> bytes | None:
    """JINDOU_CARD_SECRET, checked before anything is opened."""
    if not value:
        return None
    try:
        secret = bytes.fromhex(value)
    except ValueError:
        secret = b""
    if len(secret) < CARD_SECRET_BYTES_MIN:
        raise SettingsError(f"JINDOU_CARD_SECRET must be at least {CARD_SECRET_BYTES_MIN} bytes written in hex")
    return secret


def card_secret(configured: bytes | None, store: ReadStore) -> bytes:
    if configured is not None:
        return configured
    with store.transaction(commit=True) as cursor:
        cursor.execute(
            "INSERT INTO jindou_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (SECRET_NAME, secrets.token_hex(CARD_SECRET_BYTES_MIN)),
        )
        row = cursor.one("SELECT value FROM jindou_secrets WHERE name = ?", (SECRET_NAME,))
    assert row is not None
    return bytes.fromhex(row["value"])
