"""Authentication and authorisation: bearer tokens with roles, enforced on every route.

Off only for the embedded default (loopback, no PACS); see ``Settings.auth_enabled``.
"""

from .dependency import authorize, current_user, install_security, require
from .policy import PUBLIC_ROUTES, required_role
from .roles import Role
from .tokens import Principal, UserStore

__all__ = [
    "PUBLIC_ROUTES",
    "Principal",
    "Role",
    "UserStore",
    "authorize",
    "current_user",
    "install_security",
    "require",
    "required_role",
]
