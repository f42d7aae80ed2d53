"""The transparency log (RFC 9162): the signing key, signed tree heads, and the two proofs.

Anyone may read the key, the heads and consistency proofs; an entry's inclusion proof is read like
the entry itself (its holder, or the people who run its community). See
docs/decisions/0013-transparency-log.md.
"""

from __future__ import annotations

import base64
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import CURSOR_PART_MAX, ServicesDep, check_may_read_account, path_id
from api.errors import ApiError
from api.routes.accounts import ReaderDep
from domain.accounts import Account
from domain.errors import NotFound
from infra.transparency import signed_head
from projections import ledger, transparency
from projections.chain import canonical_bytes

router = APIRouter(prefix="/v1", tags=["transparency log"])

ENTRY_ID_PATTERN = re.compile(r"^(\d{1,18})\.(\d{1,9})$")  # "{position}.{idx}", as statements show it
SizeQuery = Annotated[int, Query(ge=0, le=CURSOR_PART_MAX)]


def _size_within(size: int | None, current: int, field: str) -> int:
    """The asked size (default: the whole log now); a tree the log has not reached is the client's error."""
    if size is None:
        return current
    if size > current:
        raise ApiError("validation_error", f"{field} is larger than the log, which holds {current} events",
                       field=field, tree_size=current)
    return size


@router.get("/public/transparency/key")
def get_key(services: ServicesDep) -> dict[str, Any]:
    """The Ed25519 key that signs tree heads, and the retired keys that signed earlier ones."""
    return services.signer.key_view()


@router.get("/public/transparency/tree-head")
def get_tree_head(services: ServicesDep, tree_size: SizeQuery | None = None) -> dict[str, Any]:
    """The signed head of the tree of the first `tree_size` events (default: every event recorded)."""
    services.projector.catch_up()
    with services.store.read() as cursor:
        size = _size_within(tree_size, transparency.tree_size(cursor), "tree_size")
        return signed_head(cursor, services.signer, size)


@router.get("/public/transparency/consistency")
def get_consistency(
    services: ServicesDep, first: Annotated[int, Query(ge=1, le=CURSOR_PART_MAX)],
    second: Annotated[int, Query(ge=1, le=CURSOR_PART_MAX)],
) -> dict[str, Any]:
    """RFC 9162 §2.1.4: the tree of `second` events extends the tree of `first` events unchanged."""
    if first > second:
        raise ApiError("validation_error", "first must not be larger than second", field="first")
    services.projector.catch_up()
    with services.store.read() as cursor:
        _size_within(second, transparency.tree_size(cursor), "second")
        proof = transparency.consistency_proof(cursor, first, second)
    return {"first": first, "second": second, "proof": proof}


@router.get("/accounts/{account_id}/entries/{entry_id}/proof")
def get_entry_proof(
    account_id: str, entry_id: str, services: ServicesDep, actor: ReaderDep, tree_size: SizeQuery | None = None,
) -> dict[str, Any]:
    """RFC 9162 §2.1.3: the event that made this entry is leaf `leaf_index` of the tree of `tree_size`."""
    account = services.app.reader().get(Account, path_id(account_id, "account"), "account")
    check_may_read_account(actor, account.id, account.community_id)
    match = ENTRY_ID_PATTERN.match(entry_id)
    services.projector.catch_up()
    with services.store.read() as cursor:
        found = match and ledger.entry(cursor, str(account.id), int(match[1]), int(match[2]))
        leaf = transparency.leaf_at_position(cursor, int(match[1])) if found else None
        if leaf is None:
            raise NotFound("no such entry on this account", entry_id=entry_id[:100])
        size = _size_within(tree_size, transparency.tree_size(cursor), "tree_size")
        if size <= leaf.index:
            raise ApiError("validation_error", f"the entry was recorded after the tree of {size} events; ask for a "
                           f"tree_size above {leaf.index}", field="tree_size", leaf_index=leaf.index)
        leaf_hash = transparency.node_hashes(cursor, [(0, leaf.index)])[(0, leaf.index)].hex()
        audit_path = transparency.inclusion_proof(cursor, leaf.index, size)
    stored = services.app.recorder.select_notifications(start=leaf.position, limit=1)
    if not stored or stored[0].id != leaf.position:  # removed behind the service's back: `jindou audit verify` says so
        raise NotFound("the event behind this entry is no longer in the store", entry_id=entry_id[:100])
    notification = stored[0]
    return {
        "entry_id": entry_id, "position": leaf.position, "leaf_index": leaf.index, "tree_size": size,
        "canonical_base64": base64.b64encode(canonical_bytes(notification)).decode(), "leaf_hash": leaf_hash,
        "audit_path": audit_path,
    }
