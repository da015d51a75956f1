"""Shared bits of the notification tests: a config builder and alert records."""

from __future__ import annotations

from pathlib import Path

from alerts.messages import fmt_number
from ioc.catalog import demo_catalog

CATALOG = demo_catalog()
UNITS = set(CATALOG.units)

BASE = """
version: 1
title: {vi: "IOC Vĩnh Phúc", en: "Vinh Phuc IOC"}
channels:
  telegram: {token_env: T_TOKEN, base_url: "http://127.0.0.1:1"}
people:
  - {id: binh, name: "Trần Thị Bình", language: vi, units: [vinh-yen], telegram: "111", email: binh@vinhyen.vn}
  - {id: cuong, name: "Lê Văn Cường", language: vi, units: [tam-dao], telegram: "222"}
  - {id: tinh, name: "Trực ban tỉnh", language: vi, units: [vinh-phuc], telegram: "333"}
  - {id: eng, name: "Engineer", language: en, telegram: "444", quiet_hours: "22:00-06:00"}
groups:
  - {id: bch-vinh-yen, name: "BCH PCTT Vĩnh Yên", members: [binh]}
routes:
  group_by: [incident]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 0s
  routes:
    - name: rain
      match: {hazard: heavy_rain}
      receivers: [bch-vinh-yen, cuong]
      channels: [telegram]
      escalate: [{after: 10m, receivers: [tinh]}]
      continue: true
    - name: rain-en
      match: {hazard: heavy_rain, severity: critical}
      receivers: [eng]
    - name: quality
      match: {category: data_quality}
      receivers: [eng]
"""

ENV = {"T_TOKEN": "123:secret-token"}


def cfg(text: str = BASE, env=None):
    from alerts.notify.config import parse_config

    return parse_config(text, "notify.yaml", unit_ids=UNITS, env=ENV if env is None else env)


def alert(station: str, *, state: str = "firing", severity: str = "warning", value: float = 104.2,
          incident: str = "inc1", ts: str = "2026-10-28T13:10:00+07:00", acknowledged=None, rule="rain_24h_very_heavy",
          labels=None) -> dict:
    st = CATALOG.stations.get(station)
    unit = (st.commune or st.district) if st else None
    name = st.name if st else station
    return {"type": "alert", "rule": rule, "entity": station, "state": state, "severity": severity, "ts": ts,
            "value": value, "labels": labels or {"hazard": "heavy_rain", **({"unit": unit} if unit else {})},
            "id": f"id-{station}", "incident": incident,
            # as the engine writes it (alerts/messages.py): Vietnamese numbers in the Vietnamese text
            "message": {"vi": f"Mưa rất to tại {name}: {fmt_number(value, 'vi', '.1f')} mm trong 24 giờ.",
                        "en": f"Very heavy rain at station {name}: {value:.1f} mm in 24 h."},
            **({"acknowledged": acknowledged} if acknowledged else {})}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
