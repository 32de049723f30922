"""The HTTP side of the client commands: the API at settings.url (GANSERVE_URL) with the key from
GANSERVE_API_KEY or GANSERVE_HOME/api_key (what `ganserve up` writes). Only HTTP: these commands work against
any ganserve, local or not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Self

import httpx

from service.settings import get_settings

TIMEOUT_S = 30.0


class CliError(Exception):
    """A refusal to print for a person (the API's problem detail, or why it could not be reached)."""


def api_key() -> str | None:
    settings = get_settings()
    plain = settings.api_key.get_secret_value()
    if plain:
        return plain
    path = settings.home / "api_key"
    return path.read_text().strip() if path.exists() else None


class Api:
    def __init__(self, base_url: str | None = None, key: str | None = None, timeout: float = TIMEOUT_S) -> None:
        self.base_url = (base_url or get_settings().url).rstrip("/")
        key = key if key is not None else api_key()
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout,
                                 headers={"X-API-Key": key} if key else {})

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach the API at {self.base_url} ({type(exc).__name__}); start it with "
                           f"`ganserve up` or set GANSERVE_URL") from None
        check(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def events(self, path: str) -> Iterator[tuple[str, Any]]:
        """(event, data) of a Server-Sent Events stream, until the server closes it."""
        try:
            with self.http.stream("GET", path, timeout=httpx.Timeout(TIMEOUT_S, read=None)) as response:
                check(response)
                event, data = "message", list[str]()
                for line in response.iter_lines():
                    if not line:
                        if data:
                            yield event, json.loads("\n".join(data))
                        event, data = "message", list[str]()
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
        except httpx.TransportError as exc:
            raise CliError(f"lost the connection to {self.base_url} ({type(exc).__name__})") from None


def check(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    if response.is_stream_consumed is False:
        response.read()
    try:
        detail = response.json().get("detail") or response.text
    except ValueError:
        detail = response.text
    raise CliError(f"{response.request.method} {response.request.url.path}: {response.status_code} {detail}")
