"""``python -m webhook``: run the admission webhook without the ``fluxup`` CLI.

Used by the integration tests and benchmarks to start the server as its own process;
production runs ``fluxup webhook``, which calls the same :func:`webhook.server.run`.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from fluxup.api.constants import OPERATOR_USERNAME, WEBHOOK_PORT
from webhook.server import run


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m webhook", description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a server listens
    parser.add_argument("--port", type=int, default=WEBHOOK_PORT)
    parser.add_argument("--cert-file", type=Path, required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument(
        "--operator-username",
        default=os.environ.get("FLUXUP_OPERATOR_USERNAME", OPERATOR_USERNAME),
    )
    parser.add_argument("--allow-cross-namespace-refs", action="store_true")
    parser.add_argument("--cert-reload-interval", type=float, default=2.0)
    parser.add_argument("--kubeconfig", type=Path, default=None,
                        help="credentials for line 2's ManagedApp lookup (default: in-cluster)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run(
        args.host,
        args.port,
        args.cert_file,
        args.key_file,
        args.operator_username,
        allow_cross_namespace_refs=args.allow_cross_namespace_refs,
        cert_reload_interval=args.cert_reload_interval,
        kubeconfig=args.kubeconfig,
    )


if __name__ == "__main__":
    main()
