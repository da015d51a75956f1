"""The data-format docs stay true to the code (docs/data-formats.md, docs/connect-a-feed.md,
docs/your-province.md): every field of the event, record and catalog structs is named, every
rejection reason is listed, every JSON example is accepted (or refused with the reason it
states) by the real parser, the indicator catalogue covers what the pipeline emits, the catalog
template loads, and the ingest examples work against a real `ioc run`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest

from ioc.catalog import CatalogFile, Site, Station, Targets, Unit, load_catalog
from ioc.errors import Reason, Rejection
from ioc.events import CameraEvent, DossierEvent, RainEvent, parse_event
from ioc.records import Alert, Indicator, decode
from tests.conftest import INGEST_TOKEN, ROOT, IocServer, free_port

DOCS = ROOT / "docs"
FORMATS = (DOCS / "data-formats.md").read_text(encoding="utf-8")
TEMPLATE = DOCS / "examples" / "catalog-template.yaml"
LOCAL = timezone(timedelta(hours=7))
DERIVED = {"t", "due_t"}  # computed by the parser, never on the wire

_FENCE = re.compile(r"^( *)```([^\n]*)\n(.*?)^\1```", re.S | re.M)


def blocks(path: Path) -> list[tuple[str, str]]:
    """(info string, body) of every fenced block of a Markdown file (indented ones in lists too)."""
    return [(m.group(2).strip(), textwrap.dedent(m.group(3)))
            for m in _FENCE.finditer(path.read_text(encoding="utf-8"))]


def wire_fields(struct: type) -> list[str]:
    return [f.name for f in msgspec.structs.fields(struct) if f.name not in DERIVED]


def test_every_event_and_record_field_is_documented() -> None:
    missing = [f"{s.__name__}.{name}" for s in (RainEvent, DossierEvent, CameraEvent, Indicator, Alert)
               for name in wire_fields(s) if f"| `{name}` |" not in FORMATS]
    assert not missing, f"fields without a row in docs/data-formats.md: {missing}"
    dead = Rejection(Reason.BAD_JSON, "x").to_dead_letter("http")
    assert not [k for k in dead if f"| `{k}` |" not in FORMATS]


def test_every_rejection_reason_is_listed() -> None:
    assert not [r.value for r in Reason if f"| `{r.value}` |" not in FORMATS]


def _json_blocks() -> list[tuple[str, str, str]]:
    out = []
    for name in ("data-formats.md", "connect-a-feed.md"):
        for info, body in blocks(DOCS / name):
            words = info.split()
            if words and words[0] in ("json", "jsonl") and all(w.startswith("reject=") for w in words[1:]):
                out.append((name, info, body))
    return out


def test_json_examples_parse_and_are_accepted_by_the_real_parser() -> None:
    seen = {"event": 0, "rejected": 0, "record": 0}
    examples = _json_blocks()
    assert len(examples) >= 15
    for name, info, body in examples:
        lines = body.splitlines() if info.startswith("jsonl") else [body]
        for text in filter(str.strip, lines):
            obj = json.loads(text)  # every example is valid JSON
            expect = re.search(r"reject=(\w+)", info)
            if "kind" in obj:
                out = parse_event(text)
                if expect:
                    assert isinstance(out, Rejection) and out.reason == expect.group(1), (name, text, out)
                    seen["rejected"] += 1
                else:
                    assert not isinstance(out, Rejection), (name, text, out)
                    seen["event"] += 1
            records = obj.get("records", [obj] if obj.get("type") in ("indicator", "alert") else [])
            for rec in records:
                assert isinstance(decode(json.dumps(rec).encode()), (Indicator, Alert)), (name, rec)
                seen["record"] += 1
    assert seen["event"] >= 10 and seen["rejected"] >= 4 and seen["record"] >= 5, seen


def test_indicator_catalogue_covers_what_the_pipeline_emits() -> None:
    from ioc.catalog import demo_catalog
    from ioc.wiring import build_pipeline, build_replay_engine
    from sensors.simulate import advance_all, demo_simulators

    catalog = demo_catalog()
    start = datetime(2026, 10, 28, 7, 0, tzinfo=LOCAL).timestamp()
    pipeline = build_pipeline(catalog, build_replay_engine(catalog, None))
    sims = demo_simulators(catalog, seed=7, start=start)
    emitted: set[tuple[str, str]] = set()
    for step in range(1, 6 * 12 + 1):  # 6 h of the demo province in 5-minute steps
        result = pipeline.process(advance_all(sims, start + step * 300))
        emitted.update((r.name, r.window) for r in result.indicators)
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| ([^|]*) \|", FORMATS, re.M)}
    undocumented = sorted((n, w) for n, w in emitted if n not in rows or f"`{w}`" not in rows[n])
    assert len(emitted) >= 25 and not undocumented, undocumented
    streams_src = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "streams").glob("*.py"))
    table = FORMATS.split("### 5.2 Indicator catalogue")[1].split("###")[0]
    names = re.findall(r"^\| `(\w+)` \|", table, re.M)
    assert len(names) >= 19 and not [n for n in names if f'"{n}"' not in streams_src]


def test_catalog_template_loads_and_every_catalog_field_is_explained() -> None:
    cat = load_catalog(TEMPLATE)
    assert cat.stations and cat.sites and {u.level for u in cat.units.values()} == {"province", "district", "commune"}
    assert cat.camera_site and all(u.code for u in cat.units.values() if u.parent != cat.province or u.level != "province")
    guide = (DOCS / "your-province.md").read_text(encoding="utf-8")
    missing = [f"{s.__name__}.{f.name}" for s in (CatalogFile, Station, Unit, Site, Targets)
               for f in msgspec.structs.fields(s) if f"`{f.name}`" not in guide]
    assert not missing, f"catalog fields not explained in docs/your-province.md: {missing}"


def test_template_ids_are_known_to_the_pipeline() -> None:
    """What docs/your-province.md §5 tells people to check: their ids are not `unknown`."""
    from ioc.wiring import build_pipeline, build_replay_engine

    cat = load_catalog(TEMPLATE)
    pipeline = build_pipeline(cat, build_replay_engine(cat, None))
    site = next(iter(cat.sites.values()))
    lines = [
        {"kind": "rain", "station": sid, "ts": "2026-10-28T13:10:00+07:00", "rain_mm": 1.2} for sid in cat.stations
    ] + [
        {"kind": "camera", "camera": site.cameras[0], "site": site.id, "ts": "2026-10-28T13:10:00+07:00",
         "waiting": 4, "counters_open": 2},
        {"kind": "dossier", "dossier": "X-1", "unit": "xa-a1", "ts": "2026-10-28T13:05:00+07:00",
         "status": "received", "channel": "online", "fee": True, "paid_online": True},
        {"kind": "dossier", "dossier": "X-2", "unit": "xa-a1", "ts": "2026-10-28T13:06:00+07:00",
         "status": "received", "channel": "direct", "fee": True},  # payment not known: not in the rate
        {"kind": "rain", "station": "NOT-IN-CATALOG", "ts": "2026-10-28T13:10:00+07:00", "rain_mm": 1.0},
    ]
    events = [parse_event(json.dumps(x)) for x in lines]
    result = pipeline.process(events)
    unknown = {r.entity for r in result.indicators if r.unknown}
    assert unknown == {"NOT-IN-CATALOG"}
    paid = {r.entity: r.value for r in result.indicators if r.name == "dossier_online_payment_rate"}
    assert paid == {"xa-a1": 1.0, "huyen-a": 1.0, "my-province": 1.0}


# -- the ingest examples of docs/connect-a-feed.md, against a real `ioc run` ---------------------------------

_TS = re.compile(r'"(ts|due)": "(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00)"')


def to_present(text: str, now: float) -> str:
    """The example's event times moved to the last minutes before `now`, in their order (so the live
    server takes them whatever the day); promised times (`due`) two days ahead."""
    stamps = sorted({m.group(2) for m in _TS.finditer(text) if m.group(1) == "ts"})
    new = {s: datetime.fromtimestamp(now - 120 + i, LOCAL).isoformat() for i, s in enumerate(stamps)}
    due = datetime.fromtimestamp(now + 2 * 86400, LOCAL).replace(microsecond=0).isoformat()
    return _TS.sub(lambda m: f'"{m.group(1)}": "{new[m.group(2)] if m.group(1) == "ts" else due}"', text)


def answers(stdout: str) -> list[dict]:
    """The JSON answers a block printed (curl prints them without a newline between)."""
    dec, out, i = json.JSONDecoder(), [], 0
    text = stdout.strip()
    while i < len(text):
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
        while i < len(text) and text[i].isspace():
            i += 1
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("docs-ingest")
    env = dict(os.environ, IOC_INGEST_TOKEN=INGEST_TOKEN, PYTHONUNBUFFERED="1")
    srv = IocServer(base / "data", free_port(), [], env).start()
    yield srv
    srv.stop()


def test_ingest_examples_work_against_a_real_server(server, tmp_path) -> None:
    examples = [(info, body) for info, body in blocks(DOCS / "connect-a-feed.md") if info.endswith("ingest-example")]
    assert [info.split()[0] for info, _ in examples].count("sh") >= 2 and any(i.startswith("python") for i, _ in examples)
    env = dict(os.environ, IOC_URL=server.url, INGEST_TOKEN=INGEST_TOKEN)
    for info, body in examples:
        code = to_present(body, time.time())
        if info.startswith("sh"):
            run = subprocess.run(["bash", "-e", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                                 timeout=60)
            assert run.returncode == 0, run.stderr
            got = answers(run.stdout)
            documented = [json.loads(line[2:]) for line in body.splitlines() if line.startswith("# {")]
            assert got == documented, (got, run.stderr)  # the answers the doc shows are the real ones
            for answer in got:
                assert not [k for k in answer if f"| `{k}` |" not in FORMATS]  # every answer field documented
        else:
            run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                                 timeout=60)
            assert run.returncode == 0 and run.stdout.split() == ["1", "[]"], (run.stdout, run.stderr)


# -- the feed adapters' payloads (docs/data-formats.md §4.2, §4.3; docs/connect-a-feed.md §3, §4) ------------

def _feed_blocks(tag: str) -> list[tuple[str, str]]:
    out = [(i, b) for name in ("data-formats.md", "connect-a-feed.md") for i, b in blocks(DOCS / name)
           if tag in i.split()]
    assert out, f"no `{tag}` example in the docs"
    return out


def test_vrain_examples_are_read_by_the_real_poller_parsers(tmp_path) -> None:
    from ioc.catalog import demo_catalog
    from sensors.vrain import load_station_map, parse_public, parse_snapshot

    maps = {}
    for _, body in _feed_blocks("vrain-stations"):
        path = tmp_path / "stations.yaml"
        path.write_text(body, encoding="utf-8")
        maps.update(load_station_map(path))
    assert maps and set(maps.values()) <= set(demo_catalog().stations)
    for _, body in _feed_blocks("vrain-public"):
        got = parse_public(body.encode(), maps, set(demo_catalog().stations))
        assert not got.rejections and not got.unmapped and got.no_data == 1 and got.readings == {"VP-001": 12.4}
    for _, body in _feed_blocks("vrain-standin"):
        by_time, _raws, rejections = parse_snapshot(body.encode())
        assert not rejections and [list(v.items()) for v in by_time.values()] == [[("VP-001", 12.4)]]


def test_sensorthings_examples_are_converted_by_the_real_subscriber_code() -> None:
    import yaml

    from sensors.sensorthings import DEFAULT_PREFIXES, convert, load_datastream_map, load_prefixes

    maps: dict = {}
    for _, body in _feed_blocks("sensorthings-map"):
        raw = yaml.safe_load(body)
        maps.update(load_datastream_map(raw["datastreams"]))
        assert load_prefixes(raw.get("topic_prefixes", DEFAULT_PREFIXES))
    assert maps["18"].factor == 0.2
    payloads = [(re.search(r"topic=(\S+)", info).group(1), body) for info, body in _feed_blocks("sensorthings")]
    guide = (DOCS / "connect-a-feed.md").read_text(encoding="utf-8")
    payloads += re.findall(r"-t '([^']+)' \\\n\s+-m '([^']+)'", guide)  # the mosquitto_pub example
    assert len(payloads) >= 2
    for topic, payload in payloads:
        out = convert(topic, payload.encode(), maps)
        assert isinstance(out, RainEvent) and out.station == "VP-001", (topic, out)
        end = json.loads(payload)["phenomenonTime"].split("/")[-1]
        assert out.t == datetime.fromisoformat(end).timestamp()  # timed at the interval's end


def test_the_custom_rule_example_loads_as_a_rules_directory(tmp_path) -> None:
    """docs/alerts.md's anomaly rule, put in a --rules directory, is accepted by the real loader."""
    from ioc.catalog import demo_catalog
    from ioc.wiring import build_replay_engine

    text = (DOCS / "alerts.md").read_text(encoding="utf-8")
    rule = next(b for i, b in blocks(DOCS / "alerts.md") if i == "yaml" and b.startswith("- name: queue_anomaly"))
    assert "new: true" in rule and "queue_anomaly" in text
    (tmp_path / "mine.yaml").write_text("version: 1\nrules:\n" + textwrap.indent(rule, "  "), encoding="utf-8")
    engine = build_replay_engine(demo_catalog(), tmp_path)
    assert "queue_anomaly" in [r.name for r in engine.rules]
