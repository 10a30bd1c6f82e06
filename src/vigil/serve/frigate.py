"""Optional sink: each event also becomes a Frigate event (``frigate: {url: http://127.0.0.1:5000}``).

Frigate's HTTP API creates a manual event with ``POST /api/events/<camera>/<label>/create`` (body
``{"score", "duration", "include_recording", "sub_label"}``; ``duration: null`` keeps it open) and ends
it with ``PUT /api/events/<event_id>/end``. vigil creates the Frigate event when its own opens and
ends it when its own ends, so Frigate keeps the recording around the anomaly. The camera must have
the same name in both. Requests go out from one background thread with a bounded queue and a
timeout each; a Frigate that is down costs log lines, never scoring time.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import urllib.error
import urllib.request
from typing import Callable


class FrigateSink:
    def __init__(self, url: str, *, timeout: float = 5.0, queue_size: int = 200,
                 log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)):
        self.url, self.timeout, self.log = url.rstrip("/"), timeout, log
        self.ids: dict[str, str] = {}                  # vigil event id -> Frigate event id
        self.failed = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name="vigil-frigate", daemon=True)
        self._thread.start()

    def submit(self, kind: str, event: dict) -> None:
        if kind in ("new", "end"):
            try:
                self._queue.put_nowait((kind, dict(event)))
            except queue.Full:
                self.failed += 1

    def _request(self, method: str, path: str, body: dict | None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            return json.loads(r.read() or b"{}")

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            kind, ev = item
            try:
                if kind == "new":
                    answer = self._request("POST", f"/api/events/{ev['camera']}/anomaly/create",
                                           {"score": round(float(ev["top_score"]), 4), "duration": None,
                                            "include_recording": True, "sub_label": "vigil"})
                    if answer.get("event_id"):
                        self.ids[ev["id"]] = answer["event_id"]
                elif ev["id"] in self.ids:
                    self._request("PUT", f"/api/events/{self.ids.pop(ev['id'])}/end", None)
            except (urllib.error.URLError, OSError, ValueError) as e:
                self.failed += 1
                self.log(f"vigil: frigate {self.url}: {kind} of event {ev['id']} not sent "
                         f"({getattr(e, 'reason', None) or e})")

    def close(self, timeout: float = 5.0) -> None:
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)
