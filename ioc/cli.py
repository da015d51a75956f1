"""`ioc` command line: run the embedded monitor, replay recorded feeds."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ioc import cli_types as t
from ioc.errors import UserError

DESCRIPTION = """IOC streaming monitor: live indicators and alerts for a provincial
Intelligent Operations Center (dossiers, rain gauges, one-stop-shop queues)."""


def _catalog(path: Path | None):
    from ioc.catalog import demo_catalog, load_catalog

    return load_catalog(path) if path else demo_catalog()


class Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (`ioc: error: ...`, exit 2), not usage + message."""

    def error(self, message: str):  # type: ignore[override]
        m = re.fullmatch(r"argument ([^:]+): (.*)", message, re.S)
        if m:  # a value refused by a `type=` check or `choices`: the flag, then what is wrong
            name = m.group(1).split("/")[0]
            sep = ":" if m.group(2).startswith("invalid choice") or not name.startswith("-") else ""
            text = f"{name}{sep} {m.group(2)}"
        else:  # missing or unknown arguments: point at the help
            text = f"{self.prog}: {message} (see: {self.prog} --help)"
        self.exit(2, f"ioc: error: {_one_line(text)}\n")


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from ioc.api import create_app
    from ioc.config import build_config
    from ioc.demo import DemoFeed
    from ioc.journal import DataDirLock, DataDirLocked
    from ioc.runtime import Runtime
    from ioc.serve import run_loop, server, settle_gc
    from ioc.wiring import build_alerting, build_pipeline

    config = build_config(  # a bad IOC_* setting is a UserError (one line, exit 2)
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        demo=args.demo,
        speed=args.speed if args.speed is not None else 1.0,
        seed=args.seed,
        catalog_path=args.catalog,
        rules_dir=args.rules,
    )
    catalog = _catalog(config.catalog_path)
    try:  # one process per data dir, before anything in it is opened (the kernel frees it on a crash)
        lock = DataDirLock(config.data_dir)
    except DataDirLocked as exc:
        print(f"ioc: {exc}", file=sys.stderr)
        return 3
    except OSError as exc:
        raise UserError(f"--data-dir {config.data_dir}: cannot be used ({exc.strerror or exc})") from None
    try:
        alerting = build_alerting(config, catalog)  # the rules are checked here
        sensorthings = _sensorthings_feed(args) if args.sensorthings_map else None
        vrain = _vrain_feed(args) if args.vrain_url else None
        # listen before any token is created or printed: a port in use is one line, and nothing was made
        listener = t.bind_listener(config.host, config.port)
    except BaseException:
        lock.release()
        raise
    pipeline = build_pipeline(catalog, alerting.engine, config.max_unknown_entities)
    runtime = Runtime(config, catalog, pipeline, lock=lock)
    alerting.attach(runtime)
    if config.demo:
        demo = DemoFeed(catalog, config.seed, config.speed)
        demo.attach(runtime)  # the simulated clock is the live "now" (future-dated input is refused against it)
        runtime.feeds.append(demo)
    if vrain is not None:
        runtime.feeds.append(vrain)
    if sensorthings is not None:
        runtime.feeds.append(sensorthings)
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
            print(f"demo: simulated feeds at {config.speed:g}x real time"
                  + (" (the wall clock)" if config.speed == 1 else ""), flush=True)
            _print_demo_tokens(demo_tokens, url, config.data_dir)
        try:
            await server(app, config.host, config.port, args.log_level).serve(sockets=[listener])
        finally:
            await alerting.stop()
            await runtime.stop()
            alerting.close()

    try:
        run_loop(serve())
    finally:
        lock.release()  # after the store is closed (a crash releases it too: the kernel does)
    return 0


def _sensorthings_feed(args: argparse.Namespace):
    """The MQTT subscriber, its Datastream map read now (a bad map is one line before anything starts)."""
    import yaml

    from ioc.feeds import SensorThingsFeed

    host, port = args.mqtt
    try:
        return SensorThingsFeed(host, port, args.sensorthings_map)
    except (ValueError, yaml.YAMLError) as exc:
        raise UserError(f"--sensorthings-map {args.sensorthings_map}: {_one_line(exc)}") from None
    except (AttributeError, TypeError):  # a list or a scalar where the map belongs
        raise UserError(f"--sensorthings-map {args.sensorthings_map}: expected a YAML mapping "
                        "`datastreams: {ID: {station: STATION_ID}}`") from None


def _vrain_feed(args: argparse.Namespace):
    """The Vrain poller, its uuid → station map read now (a bad map is one line before anything starts)."""
    from ioc.feeds import VrainFeed

    try:
        return VrainFeed(args.vrain_url, args.vrain_interval, args.vrain_stations)
    except ValueError as exc:
        raise UserError(_one_line(exc)) from None  # the message names the flag


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
    from ioc.config import input_paths
    from ioc.replay import replay

    catalog_path, rules_dir = input_paths(args.catalog, args.rules)  # flags, else IOC_CATALOG / IOC_RULES_DIR
    catalog = _catalog(catalog_path)
    return replay(args.files, catalog, emit=args.emit, rules_dir=rules_dir)


def cmd_backtest(args: argparse.Namespace) -> int:
    from alerts.backtest import backtest, format_backtest
    from ioc.replay import EXIT_UNREADABLE, InputFiles, core_rejections_at_lines
    from ioc.config import input_paths
    from ioc.wiring import build_pipeline, build_rules

    catalog_path, rules_dir = input_paths(args.catalog, args.rules)  # flags, else IOC_CATALOG / IOC_RULES_DIR
    catalog = _catalog(catalog_path)
    rules = build_rules(rules_dir)
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

    return run(args.series, args.out, args.detector, args.threshold)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ioc", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the embedded monitor (feeds, processing, alerts, wall, API) in one process",
        description="Run everything in one process: feeds → processors → alerts → wall display at http://HOST:PORT/.",
    )
    run.add_argument("--demo", action="store_true", help="add seeded simulators of all three feeds on the demo province")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    run.add_argument("--port", type=t.tcp_port, default=8000, help="port to listen on (default 8000)")
    run.add_argument("--data-dir", type=t.writable_dir, default=None, help="journal, checkpoints, alert store, dead letters (default ./ioc-data or $IOC_DATA_DIR)")
    run.add_argument("--speed", type=t.positive_float, default=None, help="simulated seconds per real second in the demo (default 1: the demo runs at the wall clock)")
    run.add_argument("--seed", type=int, default=42, help="simulator seed (default 42)")
    run.add_argument("--catalog", type=t.readable_file, default=None, help="catalog YAML (default: the demo province)")
    run.add_argument("--rules", type=t.rules_path, default=None, help="directory of alert rule YAML files (default: built-in pack)")
    run.add_argument("--vrain-url", type=t.http_url, default=None, help="poll a Vrain-style JSON endpoint of rain since 19:00 per station")
    run.add_argument("--vrain-interval", type=t.positive_float, default=300.0, help="seconds between Vrain polls (default 300)")
    run.add_argument("--vrain-stations", type=t.readable_file, default=None,
                     help="YAML mapping Vrain station uuids to catalog station ids (API key: $IOC_VRAIN_API_KEY)")
    run.add_argument("--mqtt", type=t.host_port(1883), default="127.0.0.1:1883", help="MQTT broker HOST:PORT for SensorThings observations")
    run.add_argument("--sensorthings-map", type=t.readable_file, default=None,
                     help="YAML mapping SensorThings Datastream ids to stations; enables the MQTT subscriber")
    run.add_argument("--log-level", default="warning", choices=t.LOG_LEVELS, help="uvicorn log level (default warning)")
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
    rep.add_argument("--catalog", type=t.readable_file, default=None,
                     help="catalog YAML (default $IOC_CATALOG, else the demo province)")
    rep.add_argument("--rules", type=t.rules_path, default=None,
                     help="directory of alert rule YAML files (default $IOC_RULES_DIR, else the built-in pack)")
    rep.set_defaults(func=cmd_replay)

    bt = sub.add_parser(
        "backtest",
        help="run alert rules over recorded data and print what would have fired, when and for how long",
        description="Backtest alert rules over recorded JSONL in event time, to tune thresholds before deployment.",
        epilog=exit_help("backtest"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bt.add_argument("files", nargs="+", type=Path, help="JSONL files of input events (.gz: gzip)")
    bt.add_argument("--rules", type=t.rules_path, default=None,
                    help="directory of rule YAML files overriding the built-in pack (default $IOC_RULES_DIR)")
    bt.add_argument("--catalog", type=t.readable_file, default=None,
                    help="catalog YAML (default $IOC_CATALOG, else the demo province)")
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
    det.add_argument("--threshold", type=t.fraction, default=None,
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
    except UserError as exc:  # the catalog, rules, flags and IOC_* a user wrote (ioc.errors): one line
        print(f"ioc: error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
