"""Topics, message keys and the partition of each entity.

Input topics are keyed so that every partition holds a disjoint set of
entities *and* everything one entity's indicators depend on:

* ``ioc.rain``    key = station
* ``ioc.cameras`` key = site (a camera's site from the event, docs/architecture.md §3.1)
* ``ioc.dossiers`` key = the **root unit** (province) of the event's unit,
  looked up in the catalog.  Dossier indicators roll up to parent units
  (commune → district → province), so a parent needs the events of all its
  descendants; keying by the root keeps a whole roll-up tree in one
  partition, and the distributed result equals the embedded one exactly.
  The cost is that one province's dossiers are processed by one partition:
  dossier volume is small (a province receives ~1-2 million dossiers a
  year, < 1 event/s on average) next to rain and cameras, which spread over
  all partitions.  A unit missing from the catalog has no ancestors and is
  keyed by itself.

Partition = Kafka's default partitioner (murmur2 of the key bytes,
positive, modulo the partition count), so any Kafka client producing with
these keys lands events where the workers expect them, and a worker can
derive which catalog entities a partition owns (`partition_catalog`).
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

from ioc.catalog import Catalog, CatalogFile
from ioc.events import CameraEvent, DossierEvent, Event, RainEvent

TOPIC_OF_FEED = {"rain": "ioc.rain", "dossier": "ioc.dossiers", "camera": "ioc.cameras"}
FEED_OF_TOPIC = {t: f for f, t in TOPIC_OF_FEED.items()}
INPUT_TOPICS = tuple(TOPIC_OF_FEED.values())
INDICATORS_TOPIC = "ioc.indicators"
ALERTS_TOPIC = "ioc.alerts"


def partition_of(key: str | bytes, partitions: int) -> int:
    data = key.encode() if isinstance(key, str) else key
    return (murmur2(data) & 0x7FFFFFFF) % partitions


def root_unit(catalog: Catalog, unit: str) -> str:
    chain = catalog.ancestors(unit)
    return chain[-1] if chain else unit


def key_of(event: Event, catalog: Catalog) -> str:
    if isinstance(event, RainEvent):
        return event.station
    if isinstance(event, CameraEvent):
        return event.site
    if isinstance(event, DossierEvent):
        return root_unit(catalog, event.unit)
    raise TypeError(f"not an input event: {type(event).__name__}")


def topic_of(event: Event) -> str:
    if isinstance(event, RainEvent):
        return "ioc.rain"
    if isinstance(event, CameraEvent):
        return "ioc.cameras"
    return "ioc.dossiers"


def partition_catalog(catalog: Catalog, feed: str, partition: int, partitions: int) -> Catalog:
    """The slice of the catalog whose entities live in `partition` of `feed`'s topic.

    Processors emit no-data/stale records for every catalog entity of their
    feed, so each partition's pipeline must know only its own entities, or
    partitions would overwrite each other's values with "no data".  Units are
    kept whole for rain and cameras (stations and sites refer to them); for
    dossiers only the unit trees whose root hashes to the partition.
    """
    stations, sites, units = [], [], list(catalog.units.values())
    if feed == "rain":
        stations = [s for s in catalog.stations.values() if partition_of(s.id, partitions) == partition]
    elif feed == "camera":
        sites = [s for s in catalog.sites.values() if partition_of(s.id, partitions) == partition]
    elif feed == "dossier":
        units = [u for u in catalog.units.values() if partition_of(root_unit(catalog, u.id), partitions) == partition]
    data = CatalogFile(
        province=catalog.province,
        name=catalog.name,
        stations=stations,
        units=units,
        sites=sites,
        targets=catalog.targets,
        former_province=catalog.former_province,
        region_group=catalog.region_group_setting,
    )
    return Catalog(data, f"{catalog.source}#{feed}/{partition}")
