"""Distributed runtime adapters: Kafka topics keyed by entity, Faust workers
(streams.app), per-partition checkpoints and output fan-out in Redis, and a
Redis-fed backend for any number of `ioc api` replicas.  docs/architecture.md §1."""
