"""Typed dependencies: what a route needs arrives as a parameter, declared once here.

A route that changes state takes `_: ApiKey`; one that reads a setting takes `settings: SettingsDep`, so a
test can swap the settings with `app.dependency_overrides[get_settings]`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from service.api.auth import require_api_key
from service.settings import Settings, get_settings

# 401 problem+json unless the request carries a valid key; documented as the operation's security.
ApiKey = Annotated[None, Depends(require_api_key)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
