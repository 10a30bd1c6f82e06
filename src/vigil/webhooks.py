"""Delivering events to a webhook: a bounded queue, a background thread, retries, no redirects.

:class:`WebhookSender` POSTs each event as JSON from its own thread, so a slow, failing or hanging
receiver never blocks scoring. Each event is tried up to ``attempts`` times with exponential
back-off (``backoff`` seconds doubling, at most ``max_backoff``; a ``Retry-After`` is honoured up to
that bound); every request has a ``timeout``. Only a 2xx answer counts as delivered. Redirects are
not followed: a 3xx is a failed delivery (a POST turned into a GET to another host is not a
delivery), as is any other 4xx but 408 and 429, which are retried like 5xx and network errors. At
most ``queue_size`` events wait; when the queue is full a new event is dropped and counted.
:meth:`WebhookSender.close` drains the queue for at most ``drain_seconds`` and says how many events
were not delivered.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable

from vigil.errors import VigilError

_RETRY_STATUS = {408, 429}


def check_url(url: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (and a valid port), or a one-line :class:`VigilError`."""
    try:
        u = urllib.parse.urlsplit(url)
        u.port                                          # raises ValueError for a bad port
    except ValueError as e:
        raise VigilError(f"--webhook {url}: not a valid URL ({e})") from None
    if u.scheme.lower() not in ("http", "https"):
        raise VigilError(f"--webhook {url}: only http:// and https:// URLs are accepted"
                         + (f" (not {u.scheme}://)" if u.scheme else ""))
    if not u.hostname:
        raise VigilError(f"--webhook {url}: the URL names no host")
    if any(c in url for c in " \t\r\n"):
        raise VigilError(f"--webhook {url!r}: the URL holds white space")
    return url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None                                     # urllib then raises HTTPError(3xx)


class WebhookSender:
    """POST events (anything with ``as_json()`` and ``event``) to ``url`` from a background thread."""

    def __init__(self, url: str, *, attempts: int = 5, backoff: float = 0.5, max_backoff: float = 30.0,
                 timeout: float = 5.0, queue_size: int = 100, drain_seconds: float = 10.0,
                 log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)):
        self.url = check_url(url)
        if not (isinstance(attempts, int) and attempts >= 1):
            raise VigilError(f"webhook attempts {attempts}: must be at least 1")
        for name, v in (("timeout", timeout), ("backoff", backoff), ("max_backoff", max_backoff),
                        ("drain_seconds", drain_seconds)):
            if not (isinstance(v, (int, float)) and 0 <= v < float("inf")) or (name == "timeout" and v == 0):
                raise VigilError(f"webhook {name} {v}: must be a positive number of seconds")
        self.attempts, self.backoff, self.max_backoff = attempts, backoff, max_backoff
        self.timeout, self.drain_seconds, self.log = timeout, drain_seconds, log
        self.delivered = self.failed = self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()                  # set: give up waiting and retrying
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._busy, self._abandoned = False, 0
        self._thread = threading.Thread(target=self._run, name="vigil-webhook", daemon=True)
        self._thread.start()

    def submit(self, event) -> bool:
        """Queue ``event`` for delivery without waiting; False (and counted as dropped) when the queue is full."""
        try:
            self._queue.put_nowait(event)
            return True
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1:
                self.log(f"vigil: webhook {self.url}: {self._queue.maxsize} events are waiting; "
                         f"event {event.event} and any more while the queue is full are not sent")
            return False

    def abort(self) -> None:
        """Stop retrying and waiting now (a second Ctrl-C during the drain); safe from a signal handler."""
        self._stop.set()

    @property
    def pending(self) -> int:
        """Events queued or being sent."""
        return self._queue.qsize() + (1 if self._busy else 0)

    def close(self, drain_seconds: float | None = None) -> int:
        """Wait (at most ``drain_seconds``) for queued events to go out; returns how many were not delivered."""
        limit = self.drain_seconds if drain_seconds is None else drain_seconds
        deadline = time.monotonic() + limit
        try:
            self._queue.put(None, timeout=max(0.0, limit))   # the worker ends here
        except queue.Full:
            pass
        while self._thread.is_alive() and time.monotonic() < deadline and not self._stop.is_set():
            self._thread.join(timeout=min(0.05, max(0.0, deadline - time.monotonic())))
        self._stop.set()
        try:
            self._queue.put_nowait(None)                # wakes a worker waiting on an empty queue
        except queue.Full:
            pass
        self._thread.join(timeout=min(self.timeout, 1.0))  # a request in flight: not waited for long
        left = sum(1 for e in list(self._queue.queue) if e is not None) + (1 if self._busy else 0) + self._abandoned
        lost = self.failed + self.dropped + left
        if lost:
            total = self.delivered + lost
            self.log(f"vigil: webhook {self.url}: {lost} of {total} events not delivered "
                     f"({self.failed} failed after retries, {left} still waiting at exit, {self.dropped} dropped)")
        return lost

    # --- the worker thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            ev = self._queue.get()
            if ev is None:
                return
            if self._stop.is_set():                     # closed: the rest is counted as not delivered
                self._abandoned += 1
                continue
            self._busy = True
            try:
                result = self._deliver(ev)
            finally:
                self._busy = False
            if result is True:
                self.delivered += 1
            elif result is None:                        # closed during a back-off
                self._abandoned += 1
            else:
                self.failed += 1

    def _deliver(self, ev) -> bool | None:
        """True: delivered; False: failed (after its attempts, or refused); None: closed before the end."""
        body = ev.as_json().encode()
        for attempt in range(1, self.attempts + 1):
            wait, why = None, None
            try:
                req = urllib.request.Request(self.url, data=body, method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "User-Agent": "vigil-watch"})
                with self._opener.open(req, timeout=self.timeout) as r:
                    r.read(1 << 16)
                    if 200 <= r.status < 300:
                        return True
                    why = f"HTTP {r.status}"
            except urllib.error.HTTPError as e:
                e.close()
                why = f"HTTP {e.code}"
                if 300 <= e.code < 400:
                    where = e.headers.get("Location", "?") if e.headers else "?"
                    self.log(f"vigil: webhook {self.url}: event {ev.event} not delivered (HTTP {e.code} "
                             f"redirect to {where}; redirects are not followed)")
                    return False
                if 400 <= e.code < 500 and e.code not in _RETRY_STATUS:
                    self.log(f"vigil: webhook {self.url}: event {ev.event} not delivered (HTTP {e.code}, "
                             f"refused by the receiver)")
                    return False
                wait = _retry_after(e.headers.get("Retry-After") if e.headers else None)
            except (OSError, ValueError) as e:          # URLError, timeouts, resets, bad answers
                reason = getattr(e, "reason", None) or e
                why = f"{reason}" if str(reason) else type(e).__name__
            except Exception as e:  # noqa: BLE001  the receiver's problem must never end the watch
                why = f"{type(e).__name__}: {e}"
            if attempt == self.attempts:
                self.log(f"vigil: webhook {self.url}: event {ev.event} not delivered after "
                         f"{self.attempts} attempts ({why})")
                return False
            delay = min(self.max_backoff, wait if wait is not None else self.backoff * 2 ** (attempt - 1))
            if self._stop.wait(delay):
                return None
        return False


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
