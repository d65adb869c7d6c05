"""``medseg users add|remove|list``: the people allowed on a server with authentication on."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .auth import Role, UserStore


def _store(args: argparse.Namespace) -> UserStore:
    studies = Path(args.studies)
    if not studies.is_dir():
        raise FileNotFoundError(f"studies folder {studies} does not exist")
    return UserStore(studies / ".medseg" / "auth.sqlite")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="manage the users and tokens of a server (auth on)")
    p.add_argument("--studies", required=True, help="the server's studies folder (users live in its .medseg)")
    actions = p.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create a user and print their token (shown once)")
    add.add_argument("name")
    add.add_argument("--role", default="annotator", choices=[r.name for r in Role])
    add.add_argument("--replace", action="store_true", help="issue a new token to an existing user")
    remove = actions.add_parser("remove", help="delete a user (their token stops working)")
    remove.add_argument("name")
    actions.add_parser("list", help="list users and roles (never tokens)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.action == "add":
        token = store.add(args.name, args.role, replace=args.replace)
        print(json.dumps({"user": args.name, "role": args.role, "token": token}))
        return 0
    if args.action == "remove":
        if not store.remove(args.name):
            print(f"no user {args.name!r}")
            return 1
        print(f"removed {args.name}")
        return 0
    for user in store.list():
        print(f"{user['name']}\t{user['role']}")
    return 0
