"""API keys: issuing them and checking one against the accepted sha256 digests, in constant time.

Keys are never stored or compared in plaintext: settings.api_keys holds sha256 hex digests
(`ganserve hash-key`), and the optional plaintext settings.api_key (the laptop default) is hashed on use.
How a key travels in a request is the API's business (service/api/auth.py).

Each key has a scope: `read` < `train` (jobs, uploads) < `admin` (aliases, deletes), each allowing what the
ones before it allow. An api_keys entry is `scope:digest`, or a bare digest, which is `train`; the plaintext
api_key is the operator's own key (`ganserve up` makes one), so it is `admin`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from service.settings import get_settings


def key_hash(key: str) -> str:
    """The digest stored in settings.api_keys for `key`."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return secrets.token_urlsafe(32)


SCOPES = ("read", "train", "admin")
DEFAULT_SCOPE = "train"


def accepted() -> list[tuple[str, str]]:
    """(digest, scope) of every configured key."""
    settings = get_settings()
    keys = []
    for entry in (e.strip().lower() for e in settings.api_keys if e.strip()):
        scope, _, digest = entry.rpartition(":")
        keys.append((digest, scope if scope in SCOPES else DEFAULT_SCOPE))
    plain = settings.api_key.get_secret_value()
    if plain:
        keys.append((key_hash(plain), "admin"))
    return keys


def accepted_hashes() -> list[str]:
    return [digest for digest, _ in accepted()]


def key_scope(given: str | None) -> str | None:
    """The widest scope `given` holds, or None for no valid key. Every digest is compared (no early exit),
    each with compare_digest, so the time taken says nothing about which bytes matched."""
    if not given:
        return None
    digest = key_hash(given).encode()
    rank = -1
    for accepted_digest, scope in accepted():
        if hmac.compare_digest(digest, accepted_digest.encode()):
            rank = max(rank, SCOPES.index(scope))
    return SCOPES[rank] if rank >= 0 else None


def allows(scope: str | None, needed: str) -> bool:
    return scope is not None and SCOPES.index(scope) >= SCOPES.index(needed)


def key_is_valid(given: str | None) -> bool:
    """True when `given` is any accepted key, whatever its scope."""
    return key_scope(given) is not None
