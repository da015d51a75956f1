"""`ioc` command line: run the embedded monitor, replay recorded feeds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """IOC streaming monitor: live indicators and alerts for a provincial
Intelligent Operations Center (dossiers, rain gauges, one-stop-shop queues)."""


def _catalog(path: Path | None):
    from ioc.catalog import demo_catalog, load_catalog

    return load_catalog(path) if path else demo_catalog()


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from ioc.api import create_app
    from ioc.config import ConfigError, build_config
    from ioc.demo import DemoFeed
    from ioc.journal import DataDirLock, DataDirLocked
    from ioc.runtime import Runtime
    from ioc.serve import run_loop, server, settle_gc
    from ioc.wiring import build_alerting, build_pipeline

    try:
        config = build_config(
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            demo=args.demo,
            speed=args.speed if args.speed is not None else (60.0 if args.demo else 1.0),
            seed=args.seed,
            catalog_path=args.catalog,
            rules_dir=args.rules,
        )
    except ConfigError as exc:
        print(f"ioc: {exc}", file=sys.stderr)
        return 2
    try:  # one process per data dir, before anything in it is opened (the kernel frees it on a crash)
        lock = DataDirLock(config.data_dir)
    except DataDirLocked as exc:
        print(f"ioc: {exc}", file=sys.stderr)
        return 3
    catalog = _catalog(config.catalog_path)
    alerting = build_alerting(config, catalog)
    pipeline = build_pipeline(catalog, alerting.engine, config.max_unknown_entities)
    runtime = Runtime(config, catalog, pipeline, lock=lock)
    alerting.attach(runtime)
    if config.demo:
        demo = DemoFeed(catalog, config.seed, config.speed)
        demo.attach(runtime)  # the simulated clock is the live "now" (future-dated input is refused against it)
        runtime.feeds.append(demo)
    if args.vrain_url:
        from ioc.feeds import VrainFeed

        runtime.feeds.append(VrainFeed(args.vrain_url, args.vrain_interval))
    if args.sensorthings_map:
        from ioc.feeds import SensorThingsFeed

        host, _, port = args.mqtt.partition(":")
        runtime.feeds.append(SensorThingsFeed(host or "127.0.0.1", int(port or 1883), args.sensorthings_map))
    auth = alerting.authenticator(runtime)
    demo_tokens = {}
    if config.demo:  # one principal of each role in the data dir, tokens printed once (below)
        from ioc.auth.setup import ensure_demo_principals

        demo_tokens = ensure_demo_principals(auth)
    app = create_app(runtime, alerts_router=alerting.router(runtime, auth), auth=auth)

    async def serve() -> None:
        print(f"restoring state from {config.data_dir.resolve()} ...", flush=True)
        await runtime.start()
        alerting.start(runtime)
        asyncio.get_running_loop().call_later(1.0, settle_gc)  # once serving: state is ready before it
        url = f"http://{config.host}:{config.port}"
        print(f"IOC monitor: wall {url}/  console {url}/console  metrics {url}/metrics", flush=True)
        print(f"data dir: {config.data_dir.resolve()}  restored {runtime.restored_events} journaled events "
              f"({runtime.restored_entries} batches) in {runtime.restore_seconds:.2f} s", flush=True)
        if runtime.quarantined:
            print(f"restore: {runtime.quarantined} item(s) quarantined in {runtime.quarantine.path}", flush=True)
        if config.demo:
            print(f"demo: simulated feeds at {config.speed:g}x real time", flush=True)
            _print_demo_tokens(demo_tokens, url, config.data_dir)
        try:
            await server(app, config.host, config.port, args.log_level).serve()
        finally:
            await alerting.stop()
            await runtime.stop()
            alerting.close()

    try:
        run_loop(serve())
    finally:
        lock.release()  # after the store is closed (a crash releases it too: the kernel does)
    return 0


def _print_demo_tokens(tokens: dict[str, str], url: str, data_dir: Path) -> None:
    """The demo principals' tokens, once: only their hashes are kept (a restart cannot show them)."""
    if not tokens:
        print("demo: principals demo-viewer, demo-operator, demo-admin, demo-ingest kept from an earlier run "
              f"(their tokens were printed then; new ones: ioc users rotate NAME --data-dir {data_dir})", flush=True)
        return
    print("demo principals (tokens shown once, only their hashes are stored):", flush=True)
    for name, token in tokens.items():
        print(f"  {name:14} {token}", flush=True)
    if "demo-viewer" in tokens:
        print(f"demo wall (kiosk sign-in): {url}/?token={tokens['demo-viewer']}", flush=True)


def cmd_replay(args: argparse.Namespace) -> int:
    from ioc.replay import replay

    catalog = _catalog(args.catalog)
    return replay(args.files, catalog, emit=args.emit, rules_dir=args.rules)


def cmd_backtest(args: argparse.Namespace) -> int:
    from alerts.backtest import backtest, format_backtest
    from ioc.replay import EXIT_UNREADABLE, InputFiles, core_rejections_at_lines
    from ioc.wiring import build_pipeline, build_rules

    catalog = _catalog(args.catalog)
    rules = build_rules(args.rules)
    inputs = InputFiles(args.files, "backtest", sys.stderr)
    if not inputs.check():  # missing/unreadable input: one line each, nothing run
        return EXIT_UNREADABLE
    pipeline = build_pipeline(catalog)  # indicators only; the backtest runs the rules

    def batches():
        for batch in inputs.batches():
            refused = list(batch.rejections)
            out = []
            for segment in pipeline.segments(batch.events):  # rules see every 5-minute step
                result = pipeline.process(segment)
                if result.rejections:  # future-dated / too late: by line number, never counted
                    refused.extend(result.rejections)
                out.append((segment, result.indicators, dict(pipeline.watermarks)))
            if len(refused) > len(batch.rejections):
                refused = [*batch.rejections, *core_rejections_at_lines(refused[len(batch.rejections):], batch.events,
                                                                        batch.positions)]
            for r in sorted(refused, key=lambda r: r.position):
                print(f"{batch.source}:{r.position}: {r.reason}: {r.detail}", file=sys.stderr)
            yield from out

    print(format_backtest(backtest(batches(), rules=rules, catalog=catalog)))
    return inputs.finish()


def cmd_detect(args: argparse.Namespace) -> int:
    from ioc.detect import run

    if args.threshold is not None and not 0.0 < args.threshold <= 1.0:
        print(f"ioc detect: --threshold must be in (0, 1], got {args.threshold}", file=sys.stderr)
        return 2
    return run(args.series, args.out, args.detector, args.threshold)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ioc", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the embedded monitor (feeds, processing, alerts, wall, API) in one process",
        description="Run everything in one process: feeds → processors → alerts → wall display at http://HOST:PORT/.",
    )
    run.add_argument("--demo", action="store_true", help="add seeded simulators of all three feeds on the demo province")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    run.add_argument("--data-dir", type=Path, default=None, help="journal, checkpoints, alert store, dead letters (default ./ioc-data or $IOC_DATA_DIR)")
    run.add_argument("--speed", type=float, default=None, help="simulated time per real second in the demo (default 60)")
    run.add_argument("--seed", type=int, default=42, help="simulator seed (default 42)")
    run.add_argument("--catalog", type=Path, default=None, help="catalog YAML (default: the demo province)")
    run.add_argument("--rules", type=Path, default=None, help="directory of alert rule YAML files (default: built-in pack)")
    run.add_argument("--vrain-url", default=None, help="poll a Vrain-style JSON endpoint of rain since 19:00 per station")
    run.add_argument("--vrain-interval", type=float, default=300.0, help="seconds between Vrain polls (default 300)")
    run.add_argument("--mqtt", default="127.0.0.1:1883", help="MQTT broker HOST:PORT for SensorThings observations")
    run.add_argument("--sensorthings-map", type=Path, default=None,
                     help="YAML mapping SensorThings Datastream ids to stations; enables the MQTT subscriber")
    run.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    run.set_defaults(func=cmd_run)

    from ioc.replay import exit_help

    rep = sub.add_parser(
        "replay",
        help="run the pipeline over recorded JSONL as fast as possible, in event time",
        description="Replay recorded JSONL events through the embedded pipeline (no sleeping, event time).\n"
        "Bad lines are reported on stderr with their line numbers and skipped.\n"
        "Two runs over the same input write byte-identical output.",
        epilog=exit_help("replay"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rep.add_argument("files", nargs="+", type=Path, help="JSONL files of input events (.gz: gzip)")
    rep.add_argument("--emit", type=Path, default=None, help="write every output record to this JSONL file (else print a summary)")
    rep.add_argument("--catalog", type=Path, default=None, help="catalog YAML (default: the demo province)")
    rep.add_argument("--rules", type=Path, default=None, help="directory of alert rule YAML files")
    rep.set_defaults(func=cmd_replay)

    bt = sub.add_parser(
        "backtest",
        help="run alert rules over recorded data and print what would have fired, when and for how long",
        description="Backtest alert rules over recorded JSONL in event time, to tune thresholds before deployment.",
        epilog=exit_help("backtest"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bt.add_argument("files", nargs="+", type=Path, help="JSONL files of input events (.gz: gzip)")
    bt.add_argument("--rules", type=Path, default=None, help="directory of rule YAML files overriding the built-in pack")
    bt.add_argument("--catalog", type=Path, default=None, help="catalog YAML (default: the demo province)")
    bt.set_defaults(func=cmd_backtest)

    from ioc.auth.users_cli import add_commands as add_users_commands

    add_users_commands(sub)
    from alerts.notify.routes_cli import add_commands as add_routes_commands

    add_routes_commands(sub)
    det = sub.add_parser(
        "detect",
        help="score a CSV series (timestamp,value) with the anomaly detector, one output row per input row",
        description="Run the streaming anomaly detector over a history exported from Grafana or a spreadsheet.\n"
        "Input: CSV with header timestamp,value (ISO 8601 or YYYY-MM-DD HH:MM:SS), in time order.\n"
        "Output: timestamp,value,anomaly_score,alert,scale,expected_low,expected_high; each score uses only\n"
        "the rows up to it; during the warm-up (first day or 288 rows) anomaly_score and alert are 0.",
        epilog="exit status: 0 scored, 2 unreadable or bad input (the line number is printed)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    det.add_argument("series", type=Path, help="CSV file with columns timestamp,value")
    det.add_argument("--out", type=Path, required=True, help="CSV file to write the scores to")
    det.add_argument("--detector", choices=("robust", "zscore"), default="robust",
                     help="robust (default) or the windowed z-score baseline")
    det.add_argument("--threshold", type=float, default=None,
                     help="score from which the alert column is 1 (default 0.5)")
    det.set_defaults(func=cmd_detect)

    try:
        from ioc.cli_distributed import add_commands
    except ImportError:  # distributed mode not installed in this build
        pass
    else:
        add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # clear one-line errors for the catalog, rules and settings a user wrote
        from ioc.catalog import CatalogError
        from ioc.config import ConfigError

        if isinstance(exc, (CatalogError, ConfigError)):
            print(f"ioc: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
