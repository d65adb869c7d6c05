"""Which role each route needs: one table for the whole app, so new routers are covered too.

A request (method + path; the patterns are ``fnmatch`` globs, so they match the route template
and the concrete path alike) needs the role of the first rule that matches it; routes no rule names need ``viewer`` to read (GET, HEAD) and ``annotator`` to change
anything. Only the routes in :data:`PUBLIC_ROUTES` answer without a token: they carry no patient
data (server name, API schema, whether auth is on).
"""

from __future__ import annotations

import fnmatch

from .roles import Role

PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/"),
        ("GET", "/auth/"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("HEAD", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/redoc"),
        ("HEAD", "/openapi.json"),
        ("HEAD", "/redoc"),
        ("HEAD", "/docs/oauth2-redirect"),
        ("HEAD", "/"),
    }
)

# (methods, fnmatch pattern of the path, role); first match wins
RULES: tuple[tuple[frozenset[str], str, Role], ...] = (
    (frozenset({"DELETE"}), "/datastore*", Role.admin),
    (frozenset({"PUT", "POST", "DELETE"}), "/model*", Role.admin),
    (frozenset({"GET", "PUT", "POST", "DELETE", "HEAD"}), "/users*", Role.admin),
    (frozenset({"PUT", "POST"}), "/datastore/image", Role.reviewer),
    (frozenset({"PUT", "POST"}), "/datastore/", Role.reviewer),
    (frozenset({"POST", "DELETE"}), "/train*", Role.reviewer),
    (frozenset({"POST", "DELETE"}), "/scoring*", Role.reviewer),
    (frozenset({"POST"}), "/lease/*/override", Role.reviewer),
)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _matches(pattern: str, path: str) -> bool:
    return fnmatch.fnmatchcase(path, pattern)


def required_role(method: str, path: str) -> Role | None:
    """The least role allowed to call ``method path`` (template or concrete path); None when public."""
    method = method.upper()
    if (method, path) in PUBLIC_ROUTES:
        return None
    for methods, pattern, role in RULES:
        if method in methods and _matches(pattern, path):
            return role
    return Role.viewer if method in READ_METHODS else Role.annotator
