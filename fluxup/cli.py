"""The ``fluxup`` command line: the only place that turns errors into exit codes.

Subcommands: ``sandbox`` (build/up/down/kubeconfig/status of the local cluster),
``webhook`` (run the admission server), ``certs`` (webhook certificates),
``operator`` (run the kopf operator), ``scan`` (Renovate now, or ingest a report) and
``renovate install`` (Node + Renovate into the cache). Each subcommand parses its flags
and calls one function; nothing else lives here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fluxup.api.constants import WEBHOOK_PORT
from fluxup.errors import FluxUpError

__all__ = ["build_parser", "main"]


def _sandbox_build(args: argparse.Namespace) -> int:
    from fluxup.sandbox.gobuild import ensure_all

    for name, path in ensure_all(args.component or None).items():
        print(f"{name}: {path}")
    return 0


def _sandbox_up(args: argparse.Namespace) -> int:
    from fluxup.sandbox.controlplane import up

    sb = up(Path(args.dir), full=args.full)
    print(f"kubeconfig: {sb.kubeconfig}")
    print(f"try: {sb.bin('kubectl')} --kubeconfig={sb.kubeconfig} get crds")
    return 0


def _sandbox_down(args: argparse.Namespace) -> int:
    from fluxup.sandbox.controlplane import down

    stopped = down(Path(args.dir))
    print(f"stopped {len(stopped)} process(es)")
    return 0


def _sandbox_kubeconfig(args: argparse.Namespace) -> int:
    from fluxup.sandbox.controlplane import load
    from fluxup.sandbox.guard import check_sandbox_kubeconfig

    sb = load(Path(args.dir).resolve())
    check_sandbox_kubeconfig(sb.kubeconfig)
    print(sb.kubeconfig)
    return 0


def _sandbox_status(args: argparse.Namespace) -> int:
    from fluxup.sandbox.controlplane import load

    sb = load(Path(args.dir).resolve())
    running = sb.running()
    for name, alive in running.items():
        print(f"{name:28} {'running' if alive else 'stopped'} (pid {sb.pids[name]})")
    if not running:
        print("nothing running")
    return 0 if running and all(running.values()) else 1


def _demo(args: argparse.Namespace) -> int:
    from fluxup.sandbox.demo import run_demo

    return run_demo(Path(args.dir), story=args.story, detach=args.detach)


def _demo_data(args: argparse.Namespace) -> int:
    from fluxup.sandbox.controlplane import load
    from fluxup.sandbox.demo import read_data, write_data

    sb = load(Path(args.dir).resolve())
    if args.write is not None:
        write_data(sb, args.write)
    for pvc, content in read_data(sb).items():
        print(f"{pvc}: {content.decode(errors='replace').rstrip()}")
    return 0


def _operator(args: argparse.Namespace) -> int:
    from fluxup.operator import run
    from fluxup.settings import Settings
    from fluxup.ui.settings import UiSettings

    run(Settings.from_env(), UiSettings.from_env())
    return 0


def _scan(args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses
    import logging
    import os

    from fluxup.scanner import scan_once
    from fluxup.settings import Settings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    if args.report is None and "FLUXUP_RENOVATE_NODE" not in os.environ \
            and not settings.renovate_node.exists():
        from fluxup.sandbox.renovate import ensure_renovate  # a developer machine

        found = ensure_renovate(verbose=True)
        settings = dataclasses.replace(settings, renovate_node=found.node,
                                       renovate_js=found.renovate_js)
    summaries = asyncio.run(scan_once(
        settings, report=Path(args.report) if args.report else None,
        repository=args.repository, log_format=args.log))
    for s in summaries:
        auto = f"; started {', '.join(s.auto_upgrades)}" if s.auto_upgrades else ""
        print(f"{s.repository}: {s.apps} app(s), {s.candidates} candidate(s): "
              f"{s.message}{auto}")
        for line in s.unchecked:
            print(f"  not fully checked: {line}")
    if not summaries:
        print("no ManagedApp with a discovered Git file: nothing to scan")
    return 0 if all(s.complete for s in summaries) else 1


def _renovate_install(args: argparse.Namespace) -> int:
    from fluxup.sandbox.renovate import ensure_renovate

    found = ensure_renovate(verbose=True)
    print(f"node: {found.node}\nrenovate: {found.renovate_js}")
    return 0


def _webhook(args: argparse.Namespace) -> int:
    import logging

    from fluxup.settings import Settings
    from webhook.server import run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    run(
        args.host,
        args.port,
        Path(args.cert_file),
        Path(args.key_file),
        settings.operator_username,
        allow_cross_namespace_refs=settings.allow_cross_namespace_refs,
        kubeconfig=Path(args.kubeconfig) if args.kubeconfig else None,
    )
    return 0


def _certs_ensure(args: argparse.Namespace) -> int:
    from certs.commands import certs_ensure

    print(
        certs_ensure(
            args.namespace,
            args.service,
            args.secret,
            args.webhook_config,
            kubeconfig=Path(args.kubeconfig) if args.kubeconfig else None,
        )
    )
    return 0


def _certs_write(args: argparse.Namespace) -> int:
    from certs.commands import certs_write

    print(certs_write(Path(args.dir), args.hosts, renew=args.renew))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fluxup", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sandbox = sub.add_parser("sandbox", help="the local sandbox cluster")
    sbsub = sandbox.add_subparsers(dest="action", required=True)
    build = sbsub.add_parser("build", help="build (or reuse cached) sandbox binaries")
    build.add_argument("component", nargs="*", help="components to build (default: all)")
    build.set_defaults(func=_sandbox_build)
    for name, func, helptext in (
        ("up", _sandbox_up, "start the sandbox (idempotent)"),
        ("down", _sandbox_down, "stop every process the sandbox started"),
        ("kubeconfig", _sandbox_kubeconfig, "print the sandbox's kubeconfig path"),
        ("status", _sandbox_status, "show which sandbox processes run"),
    ):
        cmd = sbsub.add_parser(name, help=helptext)
        cmd.add_argument("--dir", default=".sandbox", help="sandbox directory (default .sandbox)")
        cmd.set_defaults(func=func)
        if name == "up":
            cmd.add_argument(
                "--full",
                action="store_true",
                help="also start Flux, KWOK, the CSI stack and the Git server",
            )
    demo = sub.add_parser(
        "demo", help="start FluxUp with its web UI on a fresh local sandbox and print a "
        "walkthrough; runs until Ctrl-C, which stops everything it started")
    demo.add_argument("--dir", default=".demo",
                      help="the demo's directory (default .demo; wiped at start)")
    demo.add_argument("--story", action="store_true",
                      help="first play the automated upgrade-and-rollback story on a second app")
    demo.add_argument("--detach", action="store_true",
                      help="print the walkthrough and return, leaving everything running "
                      "(`fluxup sandbox down --dir DIR` stops it)")
    demo.set_defaults(func=_demo)
    dsub = demo.add_subparsers(dest="action")
    data = dsub.add_parser("data", help="show (or --write) the demo app's data in its volumes")
    data.add_argument("--dir", default=argparse.SUPPRESS,
                      help="the demo's directory (default .demo)")
    data.add_argument("--write", metavar="TEXT", help="write TEXT into every volume first")
    data.set_defaults(func=_demo_data)

    operator = sub.add_parser("operator", help="run the FluxUp operator (settings from FLUXUP_*)")
    operator.set_defaults(func=_operator)

    scan = sub.add_parser(
        "scan", help="look for updates with Renovate now (settings from FLUXUP_*), "
        "or ingest a report of a Renovate that ran elsewhere")
    scan.add_argument("--report", help="ingest this report.json instead of running Renovate")
    scan.add_argument("--log", action="store_true",
                      help="--report is a JSON debug log ('packageFiles with updates' line)")
    scan.add_argument("--repository",
                      help="Git URL (or Renovate's repository name) the report is about")
    scan.set_defaults(func=_scan)

    renovate = sub.add_parser("renovate", help="the Renovate FluxUp runs")
    rsub = renovate.add_subparsers(dest="action", required=True)
    install = rsub.add_parser("install", help="install Node 24 + Renovate 44 (cached by "
                              "version under ~/.cache/fluxup)")
    install.set_defaults(func=_renovate_install)

    hook = sub.add_parser("webhook", help="run the admission webhook (HTTPS)")
    hook.add_argument("--host", default="0.0.0.0",  # noqa: S104 - a server in its own pod
                      help="address to listen on")
    hook.add_argument("--port", type=int, default=WEBHOOK_PORT,
                      help="HTTPS port (the manifests' Service maps 443 to it)")
    hook.add_argument("--cert-file", required=True,
                      help="serving certificate (PEM); reloaded when the file changes")
    hook.add_argument("--key-file", required=True, help="its private key (PEM)")
    hook.add_argument("--kubeconfig", default=None,
                      help="credentials for line 2's ManagedApp lookup (default: in-cluster)")
    hook.set_defaults(func=_webhook)

    certs = sub.add_parser("certs", help="webhook certificates")
    csub = certs.add_subparsers(dest="action", required=True)
    ensure = csub.add_parser(
        "ensure",
        help="create/renew the CA and serving cert in a Secret "
        "and inject caBundle into the webhook configurations",
    )
    ensure.add_argument("--namespace", required=True,
                        help="namespace of the webhook's Service and of the Secret")
    ensure.add_argument("--service", required=True,
                        help="the webhook's Service; the certificate names its DNS names")
    ensure.add_argument("--secret", required=True,
                        help="Secret (kubernetes.io/tls) that holds the CA and serving pair")
    ensure.add_argument("--webhook-config", action="append", default=[], required=True,
                        help="Mutating/ValidatingWebhookConfiguration name(s) to inject the "
                        "CA bundle into (repeatable)")
    ensure.add_argument("--kubeconfig", help="kubeconfig to use (default: in-cluster "
                        "credentials inside a Pod, else the default kubeconfig)")
    ensure.set_defaults(func=_certs_ensure)
    write = csub.add_parser("write", help="write a CA and serving certificate to files")
    write.add_argument("--dir", required=True, help="directory for the PEM files")
    write.add_argument("--hosts", nargs="+", required=True,
                       help="DNS names and IP addresses the certificate must name")
    write.add_argument("--renew", action="store_true",
                       help="issue a new serving certificate from the same CA now")
    write.set_defaults(func=_certs_write)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except FluxUpError as exc:
        print(f"fluxup: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
