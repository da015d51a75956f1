"""The store interface the engine and the notifiers use (adapters implement it).

A store keeps, durably:
- every alert (current record + lifecycle meta, active or resolved),
- the audit log (every transition, acknowledgement and silence change),
- silences,
- the notification outbox: one row per idempotency key ("{alert id}:{kind}");
  enqueueing a key that exists is a no-op, so a replayed batch after a crash
  never enqueues a notification twice,
- optionally an engine checkpoint (AlertEngine.checkpoint()).

`commit()` writes one Commit atomically (one SQLite transaction / one Redis
MULTI), so a SIGKILL leaves either all or none of a batch's transitions.

Delivery is at-least-once per key: a crash between a successful POST and
`outbox_delivered()` resends it once on restart with the same Idempotency-Key
header, which receivers use to drop the duplicate.
"""

from __future__ import annotations

from typing import Any, Protocol

from ioc.records import Alert

from alerts.lifecycle import Commit

OUTBOX_PENDING, OUTBOX_DELIVERED, OUTBOX_FAILED = "pending", "delivered", "failed"


class AlertStore(Protocol):
    def load(self) -> dict[str, Any]:
        """{"active": [(Alert, meta dict)], "resolved": [Alert] (recent), "silences": [dict], "state": dict|None}"""

    def commit(self, commit: Commit) -> None: ...

    def get_alert(self, alert_id: str) -> Alert | None: ...

    def list_alerts(self, state: str | None = None, limit: int = 500) -> list[Alert]: ...

    def history(self, alert_id: str) -> list[dict]: ...

    # outbox
    def outbox_pending(self, now: float, limit: int = 100) -> list[dict]:
        """Due entries, oldest first: {key, kind, alert_id, ts, alert, attempts}."""

    def outbox_delivered(self, key: str, at: float) -> None: ...

    def outbox_retry(self, key: str, attempts: int, next_at: float, error: str) -> None: ...

    def outbox_failed(self, key: str, attempts: int, error: str) -> None: ...

    def outbox_status(self, key: str) -> dict | None: ...

    def close(self) -> None: ...
