"""Field feeds started by `ioc run` besides HTTP push: the Vrain-style poller
and the SensorThings MQTT subscriber.  Each adapter delivers to a sink; here
the sink is the runtime's bus, with the feed's name as the dead-letter source.
"""

from __future__ import annotations

from pathlib import Path

import yaml


class VrainFeed:
    def __init__(self, url: str, interval_s: float = 300.0) -> None:
        self.url = url
        self.interval_s = interval_s

    async def run(self, runtime) -> None:
        from sensors.vrain import VrainPoller

        poller = VrainPoller(self.url, runtime.sink("vrain"), interval_s=self.interval_s)
        try:
            await poller.run()
        finally:
            await poller.aclose()


class SensorThingsFeed:
    def __init__(self, host: str, port: int, map_path: Path) -> None:
        self.host, self.port = host, port
        self.map_path = map_path
        raw = yaml.safe_load(Path(map_path).read_text(encoding="utf-8")) or {}
        from sensors.sensorthings import load_datastream_map

        self.datastreams = load_datastream_map(raw.get("datastreams", raw))  # ValueError names a bad entry

    async def run(self, runtime) -> None:
        from sensors.sensorthings import SensorThingsSubscriber

        sub = SensorThingsSubscriber(runtime.sink("sensorthings"), self.datastreams, host=self.host, port=self.port)
        await sub.run()
