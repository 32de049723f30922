"""Typed dependencies: what a route needs arrives as a parameter, declared once here.

A route that changes state takes `_: ApiKey` (or `_: AdminKey`); one that reads a setting takes `settings: SettingsDep`, so a
test can swap the settings with `app.dependency_overrides[get_settings]`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from service.api.auth import scoped
from service.settings import Settings, get_settings

# 401 problem+json unless the request carries a valid key, 403 when its scope is too narrow; documented as
# the operation's security. ApiKey: jobs and uploads; AdminKey: aliases and deletes.
ApiKey = Annotated[None, Depends(scoped("train"))]
AdminKey = Annotated[None, Depends(scoped("admin"))]
SettingsDep = Annotated[Settings, Depends(get_settings)]
