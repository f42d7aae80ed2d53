"""Every refusal the domain can raise has an HTTP status (a new error class whose code is not in
`api.errors.STATUS_BY_CODE` would answer 500 instead of its refusal), and docs/api.md names it."""

from __future__ import annotations

from pathlib import Path

import domain.errors
from api.errors import STATUS_BY_CODE

API_DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


def test_every_domain_error_code_has_a_status() -> None:
    classes = [cls for cls in _subclasses(domain.errors.DomainError) if cls is not domain.errors.ReplayedDecline]
    assert len(classes) > 20  # every error class of every feature module, imported with the bus
    root = domain.errors.DomainError.code
    families = [cls for cls in classes if cls.code == root]  # `Declined`: only its members are raised
    assert all(cls.__subclasses__() for cls in families), f"error classes with no code of their own: {families}"
    missing = sorted({f"{cls.__module__}.{cls.__qualname__}: {cls.code}" for cls in classes
                      if cls.code != root and cls.code not in STATUS_BY_CODE})
    assert not missing, f"add these codes to api/errors.py STATUS_BY_CODE: {missing}"
    documented = API_DOCUMENT.read_text(encoding="utf-8")
    undocumented = sorted({cls.code for cls in classes if cls.code != root and f"`{cls.code}`" not in documented})
    assert not undocumented, f"add these codes to the error list of docs/api.md: {undocumented}"
