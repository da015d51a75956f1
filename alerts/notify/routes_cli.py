"""`ioc routes test KEY=VALUE...`: who would be told of an alert with these labels, how, after which waits.

    ioc routes test hazard=heavy_rain severity=critical entity=VP-001      # the file of $IOC_NOTIFY_CONFIG
    ioc routes test unit=tam-dao severity=warning --config /etc/ioc/notify.yaml

`entity=` a station, site or unit of the catalog fills in its `unit`; `rule=`,
`severity=` (default warning) and any other label are matched as routes see
them.  Exit 0 when someone would be told, 1 when nobody would, 2 for a
configuration that cannot be used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _wait(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g} s"
    if seconds < 3600:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


def cmd_routes_test(args: argparse.Namespace) -> int:
    from ioc.catalog import demo_catalog, load_catalog
    from ioc.records import Alert

    from alerts.notify.config import config_path, load_config
    from alerts.notify.directory import NotifyConfigError
    from alerts.notify.planner import Planner

    catalog = load_catalog(args.catalog) if args.catalog else demo_catalog()
    path = args.config or config_path()
    if path is None:
        print("ioc routes: no notification configuration: pass --config FILE or set IOC_NOTIFY_CONFIG",
              file=sys.stderr)
        return 2
    try:
        cfg = load_config(Path(path), set(catalog.units), env=_EnvForTest())
    except NotifyConfigError as exc:
        print(f"ioc routes: {exc}", file=sys.stderr)
        return 2
    labels: dict[str, str] = {}
    for item in args.labels:
        k, sep, v = item.partition("=")
        if not sep or not k:
            print(f"ioc routes: {item!r}: expected KEY=VALUE", file=sys.stderr)
            return 2
        labels[k] = v
    rule, entity = labels.pop("rule", "test"), labels.pop("entity", "")
    severity = labels.pop("severity", "warning")
    if severity not in ("info", "warning", "critical"):
        print(f"ioc routes: severity={severity!r}: expected info, warning or critical", file=sys.stderr)
        return 2
    if "unit" not in labels and entity:
        st, site = catalog.stations.get(entity), catalog.sites.get(entity)
        unit = (st.commune or st.district) if st else (site.unit if site else (entity if entity in catalog.units else None))
        if unit:
            labels["unit"] = unit
    if labels.get("unit") and labels["unit"] not in catalog.units:
        print(f"ioc routes: unit={labels['unit']!r} is not a unit of the catalog", file=sys.stderr)
        return 2
    a = Alert(rule=rule, entity=entity or "-", state="firing", severity=severity, ts="2026-01-01T00:00:00+07:00",
              labels=labels, id="test", incident="test")
    rows = Planner(catalog.ancestors).explain(cfg, a)
    if not rows:
        print("nobody would be told (no route with receivers covering this alert's unit)")
        return 1
    last_route = None
    for r in rows:
        if r["route"] != last_route:
            last_route = r["route"]
            print(f"route {r['route']}: group_by {', '.join(r['group_by'])}, group_interval "
                  f"{_wait(r['group_interval_s'])}, repeat {_wait(r['repeat_interval_s'])}")
        when = "first message" if r["tier"] == 0 else f"escalation tier {r['tier']} if unacknowledged"
        quiet = ", held in their quiet hours" if r["quiet_hours"] else ""
        print(f"  after {_wait(r['wait_s']):>7}  {r['name']} ({r['person']}, {r['language']})  "
              f"{r['channel']} {r['address']}  [{when}{quiet}]")
    return 0


class _EnvForTest(dict):
    """A dry run needs no secret: every named variable reads as set (the values are never used)."""

    def __init__(self) -> None:
        import os

        super().__init__(os.environ)

    def get(self, key, default=None):
        if key == "IOC_PUBLIC_URL":
            return super().get(key, default)
        return super().get(key) or "unused-in-a-dry-run"


def add_commands(sub) -> None:
    routes = sub.add_parser("routes", help="notification routes: dry-run who would be told of an alert")
    rsub = routes.add_subparsers(dest="routes_command", metavar="SUBCOMMAND")
    t = rsub.add_parser("test", help="print who would be told of an alert with these labels, over which channel, "
                                     "after which waits")
    t.add_argument("labels", nargs="*", help="KEY=VALUE labels: hazard=heavy_rain severity=critical entity=VP-001 ...")
    t.add_argument("--config", type=Path, default=None, help="the notification YAML (default $IOC_NOTIFY_CONFIG)")
    t.add_argument("--catalog", type=Path, default=None, help="catalog YAML (default: the demo province)")
    t.set_defaults(func=cmd_routes_test)
    routes.set_defaults(func=lambda args: (routes.print_help(), 2)[1])
