"""Decision 18/2021 disaster risk levels from rain (docs/domain.md §2).

- tables.py     the shipped tables (decision18.yaml), validated;
- article44.py  heavy-rain levels 1–4 from band, days, terrain and extent;
- article46.py  flash-flood/landslide levels 1–3 per commune;
- areas.py      rain-day history per gauge and the level of every commune, district and province.

Pure: no I/O beyond loading the tables, no clock.
"""
