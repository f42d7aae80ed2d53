"""The `jindou` command: serve, demo, bench, audit."""

from __future__ import annotations

import argparse
import logging
import sys

from infra.settings import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from api.app import create_app

    uvicorn.run(create_app(settings=settings), host=host, port=port, log_level="info", access_log=False)


def _serve(args: argparse.Namespace) -> int:
    serve(Settings.from_env(), args.host, args.port)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from api.demo import run_demo

    return run_demo(Settings.from_env(), args.host, args.port, serve_after=not args.no_serve)


def _bench(args: argparse.Namespace) -> int:
    from infra.bench import run_bench

    return run_bench(args)


def _audit(args: argparse.Namespace) -> int:
    from infra.audit import run_replay, run_verify

    if args.audit_command == "verify":
        return run_verify(Settings.from_env(), sys.stdout, sys.stderr, published_files=args.published)
    return run_replay(Settings.from_env(), sys.stdout, sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jindou", description="金豆 Jindou — community points ledger")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="serve the API and the pages")
    serve_cmd.add_argument("--host", default=DEFAULT_HOST)
    serve_cmd.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve_cmd.set_defaults(func=_serve)

    demo_cmd = commands.add_parser("demo", help="fill a fresh database with a month of 金沙社区 and serve it")
    demo_cmd.add_argument("--host", default=DEFAULT_HOST)
    demo_cmd.add_argument("--port", type=int, default=DEFAULT_PORT)
    demo_cmd.add_argument("--no-serve", action="store_true", help="only fill the database")
    demo_cmd.set_defaults(func=_demo)

    bench_cmd = commands.add_parser("bench", help="measure throughput and latency of the ledger")
    bench_cmd.add_argument("--database-url", action="append", dest="database_urls",
                           help="bench this database (repeatable); default: memory, a temporary SQLite file, "
                                "and PostgreSQL if JINDOU_BENCH_POSTGRES_URL is set")
    bench_cmd.add_argument("--operations", type=int, default=2_000, help="operations per measurement")
    bench_cmd.add_argument("--threads", type=int, default=8, help="concurrent clients for the contention runs")
    bench_cmd.set_defaults(func=_bench)

    audit_cmd = commands.add_parser("audit", help="check the event store and the read model (exit 1 on any problem)")
    audit_commands = audit_cmd.add_subparsers(dest="audit_command", required=True)
    verify_cmd = audit_commands.add_parser("verify", help="recompute the hash chain; name the first altered, removed or inserted event")
    verify_cmd.add_argument("--published", action="extend", nargs="+", default=[], metavar="FILE",
                            help="fund reports, /v1/audit/chain answers or signed tree heads kept earlier: their heads "
                                 "must still match, their signatures verify and each extends the one before")
    audit_commands.add_parser("replay", help="rebuild every projection from event 1 and compare it with the live one")
    audit_cmd.set_defaults(func=_audit)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
