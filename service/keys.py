"""API keys: issuing them and checking one against the accepted sha256 digests, in constant time.

Keys are never stored or compared in plaintext: settings.api_keys holds sha256 hex digests
(`ganserve hash-key`), and the optional plaintext settings.api_key (the laptop default) is hashed on use.
How a key travels in a request is the API's business (service/api/auth.py).
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


def accepted_hashes() -> list[str]:
    settings = get_settings()
    hashes = [h.strip().lower() for h in settings.api_keys if h.strip()]
    plain = settings.api_key.get_secret_value()
    if plain:
        hashes.append(key_hash(plain))
    return hashes


def key_is_valid(given: str | None) -> bool:
    """True when `given` hashes to an accepted digest. Every digest is compared (no early exit), each
    with compare_digest, so the time taken says nothing about which bytes matched."""
    if not given:
        return False
    digest = key_hash(given).encode()
    valid = False
    for accepted in accepted_hashes():
        valid |= hmac.compare_digest(digest, accepted.encode())
    return valid
