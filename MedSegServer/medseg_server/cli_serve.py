"""``medseg serve``: run the server with uvicorn."""

from __future__ import annotations

import argparse

from .settings import Settings

KEEP_ALIVE_SECONDS = 75  # idle keep-alive connections stay open longer than any client's poll interval


def uvicorn_options(settings: Settings) -> dict:
    """Options of ``uvicorn.run``/``uvicorn.Config`` for a MedSeg server.

    uvicorn closes idle connections after 5 s by default; a client polling training progress every
    few seconds then races the close and sees "connection reset" now and then.
    """
    return {"host": settings.host, "port": settings.port, "timeout_keep_alive": KEEP_ALIVE_SECONDS}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the MONAI Label compatible server")
    p.add_argument("--studies", required=True, help="folder of images (the embedded datastore)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-upload-mb", type=float, default=1024.0)
    p.add_argument("--auto-train-every", type=int, default=0, help="retrain after N new final labels (0: off)")
    p.add_argument("--dicomweb", metavar="URL", help="serve the CT series of this DICOMweb PACS (auth on)")
    p.add_argument("--auth", choices=["auto", "on", "off"], default="auto",
                   help="tokens with roles (`medseg users add`); auto: off only on loopback without --dicomweb")
    p.add_argument("--cors-origin", action="append", default=[], help="browser origin allowed (repeatable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    settings = Settings(
        studies=args.studies, host=args.host, port=args.port,
        max_upload_mb=args.max_upload_mb, auto_train_every=args.auto_train_every,
        dicomweb=args.dicomweb, auth=args.auth, cors_origins=args.cors_origin,
    )
    settings.studies.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    uvicorn.run(app, log_level="info", **uvicorn_options(settings))
    return 0
