"""The events database: SQLAlchemy Core over SQLite (the default) or PostgreSQL (``postgresql://``).

Two tables: ``meta`` (``key``, ``value``; ``schema_version`` among them) and ``events`` (one row per
event, its review state included). :meth:`Store.open` creates the tables, or upgrades an older schema
step by step (:data:`UPGRADES`), and refuses a database written by a newer vigil. Times are epoch
seconds. No password is ever stored: sources are not kept here, only camera names.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa

from vigil.errors import VigilError

SCHEMA_VERSION = 1
VERDICTS = ("false_alarm", "confirmed")

metadata = sa.MetaData()
meta = sa.Table("meta", metadata,
                sa.Column("key", sa.String(64), primary_key=True),
                sa.Column("value", sa.String(256), nullable=False))
events = sa.Table("events", metadata,
                  sa.Column("id", sa.String(96), primary_key=True),      # <epoch ms>-<camera>-<n>: stable, sortable
                  sa.Column("camera", sa.String(64), nullable=False, index=True),
                  sa.Column("label", sa.String(32), nullable=False),
                  sa.Column("start_time", sa.Float, nullable=False, index=True),
                  sa.Column("end_time", sa.Float),                       # null while the event is open
                  sa.Column("score", sa.Float, nullable=False),          # the latest smoothed score
                  sa.Column("top_score", sa.Float, nullable=False),
                  sa.Column("peak_time", sa.Float, nullable=False),
                  sa.Column("peak_frame", sa.Integer, nullable=False),   # frames counted from the service's start
                  sa.Column("threshold", sa.Float, nullable=False),
                  sa.Column("ended", sa.String(16)),                     # gap, drop, stop (vigil.watch's reasons)
                  sa.Column("has_snapshot", sa.Boolean, nullable=False, default=False),
                  sa.Column("has_clip", sa.Boolean, nullable=False, default=False),
                  sa.Column("clip_note", sa.String(256)),                # why there is no clip, when there is none
                  sa.Column("verdict", sa.String(16)),                   # null, false_alarm, confirmed
                  sa.Column("reviewed_at", sa.Float))

#: from version N to N + 1: statements run in order (none yet; version 1 is the first)
UPGRADES: dict[int, list[str]] = {}

_FIELDS = [c.name for c in events.columns]


class Store:
    """Thread-safe access to the events; one instance per service."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        self._lock = threading.Lock()       # SQLite takes one writer at a time; so do we, everywhere

    @classmethod
    def open(cls, url: str) -> "Store":
        """Connect, create or upgrade the schema; one line naming the database when that fails."""
        from vigil.serve.config import mask_url

        kw: dict[str, Any] = {}
        if url.startswith("sqlite"):
            from pathlib import Path

            from vigil.io import make_dirs

            file = url.split(":///", 1)[1]
            if file != ":memory:":
                make_dirs(Path(file).parent)
            kw = {"connect_args": {"timeout": 30, "check_same_thread": False}}
        try:
            engine = sa.create_engine(url, pool_pre_ping=True, **kw)
            store = cls(engine)
            store._migrate()
        except VigilError:
            raise
        except (sa.exc.SQLAlchemyError, ImportError) as e:
            reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
            raise VigilError(f"database {mask_url(url)}: {reason}") from None
        return store

    def _migrate(self) -> None:
        with self.engine.begin() as c:
            metadata.create_all(c, tables=[meta])
            row = c.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise VigilError(f"database: schema version {version} was written by a newer vigil "
                                 f"(this one knows {SCHEMA_VERSION})")
            if version == 0:
                metadata.create_all(c)
            else:
                for v in range(version, SCHEMA_VERSION):
                    for statement in UPGRADES[v]:
                        c.execute(sa.text(statement))
            values = {"value": str(SCHEMA_VERSION)}
            if row:
                c.execute(meta.update().where(meta.c.key == "schema_version").values(**values))
            else:
                c.execute(meta.insert().values(key="schema_version", **values))

    def schema_version(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar_one())

    # --- writing ----------------------------------------------------------------------------------
    def insert(self, event: dict) -> None:
        with self._lock, self.engine.begin() as c:
            c.execute(events.insert().values(**{k: v for k, v in event.items() if k in _FIELDS}))

    def update(self, event_id: str, **values) -> None:
        with self._lock, self.engine.begin() as c:
            c.execute(events.update().where(events.c.id == event_id).values(**values))

    def review(self, event_id: str, verdict: str) -> dict | None:
        """Store a verdict (``false_alarm`` or ``confirmed``); the updated event, or None if unknown."""
        if verdict not in VERDICTS:
            raise ValueError(verdict)
        self.update(event_id, verdict=verdict, reviewed_at=time.time())
        return self.get(event_id)

    def close_open(self, end_time: float) -> int:
        """Events left open by a service that died (no chance to end them): end them now, ``ended``
        ``lost``. Called at start; returns how many."""
        with self._lock, self.engine.begin() as c:
            r = c.execute(events.update().where(events.c.end_time.is_(None))
                          .values(end_time=sa.func.coalesce(events.c.peak_time, end_time), ended="lost"))
            return r.rowcount or 0

    # --- reading ----------------------------------------------------------------------------------
    def get(self, event_id: str) -> dict | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(events).where(events.c.id == event_id)).mappings().first()
        return dict(row) if row else None

    def list(self, *, camera: str | None = None, after: float | None = None, before: float | None = None,
             limit: int = 50, ended_before: float | None = None) -> list[dict]:
        """Newest first. ``after``/``before``: bounds on the start time (epoch seconds)."""
        q = sa.select(events).order_by(events.c.start_time.desc(), events.c.id.desc()).limit(limit)
        if camera is not None:
            q = q.where(events.c.camera == camera)
        if after is not None:
            q = q.where(events.c.start_time > after)
        if before is not None:
            q = q.where(events.c.start_time < before)
        if ended_before is not None:
            q = q.where(events.c.end_time < ended_before)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def with_media_before(self, when: float) -> list[dict]:
        """Events that ended before ``when`` and still have a clip or snapshot (for retention)."""
        q = sa.select(events.c.id, events.c.camera).where(
            events.c.end_time < when, sa.or_(events.c.has_clip, events.c.has_snapshot))
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def count(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())

    def dispose(self) -> None:
        self.engine.dispose()
