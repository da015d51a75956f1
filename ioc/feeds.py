"""Field feeds started by `ioc run` besides HTTP push: the Vrain poller and
the SensorThings MQTT subscriber.  Each adapter delivers to a sink; here the
sink is the runtime's bus, with the feed's name as the dead-letter source
(rejections are counted in ioc_events_rejected_total{feed="rain",reason}).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from ioc.config import Secret


class VrainFeed:
    """`--vrain-url` (+ `--vrain-stations` uuid map, key from IOC_VRAIN_API_KEY)."""

    def __init__(self, url: str, interval_s: float = 300.0, stations_path: Path | None = None,
                 api_key: Secret | None = None) -> None:
        from sensors.vrain import API_KEY_ENV, load_station_map

        self.url = url
        self.interval_s = interval_s
        try:
            self.station_ids = load_station_map(stations_path) if stations_path else None
        except ValueError as exc:  # names the file and the bad entry
            raise ValueError(f"--vrain-stations: {exc}") from None
        env_key = os.environ.get(API_KEY_ENV, "").strip()
        self.api_key = api_key if api_key is not None else (Secret(env_key) if env_key else None)

    def __repr__(self) -> str:
        return f"VrainFeed(interval_s={self.interval_s}, api_key={'***' if self.api_key else None})"

    async def run(self, runtime) -> None:
        from sensors.vrain import VrainPoller

        catalog = getattr(runtime, "catalog", None)
        known = set(catalog.stations) if catalog is not None else None  # uuids that are catalog ids map to themselves
        poller = VrainPoller(self.url, runtime.sink("vrain"), interval_s=self.interval_s, station_ids=self.station_ids,
                             known_stations=known, api_key=self.api_key.reveal() if self.api_key else None,
                             state_path=Path(runtime.config.data_dir) / "vrain-state.json")
        try:
            await poller.run()
        finally:
            await poller.aclose()
            poller.close_log_masks()


class SensorThingsFeed:
    """`--sensorthings-map`: YAML `datastreams: {...}` and optional `topic_prefixes: [v1.0, v1.1]`."""

    def __init__(self, host: str, port: int, map_path: Path) -> None:
        from sensors.sensorthings import DEFAULT_PREFIXES, load_datastream_map, load_prefixes

        self.host, self.port = host, port
        self.map_path = map_path
        raw = yaml.safe_load(Path(map_path).read_text(encoding="utf-8")) or {}
        self.datastreams = load_datastream_map(raw.get("datastreams", raw))  # ValueError names a bad entry
        self.prefixes = load_prefixes(raw.get("topic_prefixes", DEFAULT_PREFIXES)) if "datastreams" in raw \
            else DEFAULT_PREFIXES

    async def run(self, runtime) -> None:
        from sensors.sensorthings import SensorThingsSubscriber

        sub = SensorThingsSubscriber(runtime.sink("sensorthings"), self.datastreams, host=self.host, port=self.port,
                                     topic_prefix=self.prefixes)
        await sub.run()
