"""Deterministic ids. A command's effects are named by what caused them, so a retry collides
with the first recording instead of doing the work twice (idempotency by construction)."""

from __future__ import annotations

from uuid import UUID, uuid5

NAMESPACE = UUID("6f1d2c1e-5b0a-4d0e-9a43-2b8a1f3c9e17")  # Jindou's own namespace, never change


def derived_id(kind: str, *parts: object) -> UUID:
    """A stable UUID for `kind` named by `parts` (joined unambiguously)."""
    name = kind + "\x1f" + "\x1f".join(str(p) for p in parts)
    return uuid5(NAMESPACE, name)


def parse_id(value: str) -> UUID | None:
    """An id from a URL or body, or None when it cannot be one of ours."""
    try:
        return UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None
