"""The service's page in a real headless Chromium, driven over the DevTools protocol: two camera
tiles, an event in the list with its snapshot decoded, its clip playing, a review click stored in the
database, and live updates without a reload (server-sent events)."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request

import numpy as np
import pytest

from serve_support import free_port, stop_process, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--no-default-browser-check", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it with "
                                                         "apt-get when it may)")


class Browser:
    """Chromium with ``--remote-debugging-port``; :meth:`js` evaluates an expression in the page."""

    def __init__(self, url: str, profile):
        import websocket

        self.port = free_port()
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--remote-debugging-port={self.port}",
                                      f"--user-data-dir={profile}", "--window-size=1280,900", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        targets = wait_until(lambda: self._targets(), 30, "chromium's DevTools endpoint")
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.n, self.errors = 0, []
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Page.navigate", url=url)

    def _targets(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=2) as r:
                return [t for t in json.loads(r.read()) if t["type"] == "page"] or None
        except OSError:
            return None

    def call(self, method: str, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == "Runtime.exceptionThrown":
                self.errors.append(msg["params"]["exceptionDetails"])
            if msg.get("id") == self.n:
                assert "error" not in msg, msg
                return msg.get("result", {})

    def js(self, expression: str):
        r = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")

    def close(self):
        try:
            self.ws.close()
        finally:
            stop_process(self.proc)


@pytest.fixture
def served(trained_hybrid, synthetic, tmp_path, request):
    from serve_support import MjpegCamera
    from vigil.serve.config import load_config
    from vigil.serve.service import Service

    run = trained_hybrid.save(tmp_path / "run")
    footage = np.concatenate([synthetic.train[0].frames(), synthetic.test[0].frames()])
    cams = [MjpegCamera(footage, fps=20), MjpegCamera(np.roll(footage, -40, axis=0), fps=20)]
    for c in cams:
        request.addfinalizer(c.stop)
    (tmp_path / "vigil.yaml").write_text(f"""
cameras:
  front-door: {{source: "{cams[0].url}", run: {run}}}
  yard_2:     {{source: "{cams[1].url}", run: {run}}}
http: {{host: 127.0.0.1, port: 0}}
storage: {{dir: data, pre_seconds: 1}}
""")
    service = Service(load_config(tmp_path / "vigil.yaml"), log=lambda m: None)
    request.addfinalizer(service.stop)
    service.start()
    return service


def test_the_page_in_headless_chromium(served, tmp_path, request):
    browser = Browser(served.url + "/", tmp_path / "profile")
    request.addfinalizer(browser.close)
    wait_until(lambda: browser.js("document.querySelectorAll('.tile').length") == 2, 30, "two tiles")
    names = browser.js("[...document.querySelectorAll('.tile-name')].map(e => e.textContent)")
    assert sorted(names) == ["front-door", "yard_2"]
    # live: the tiles' pictures and states arrive without a reload
    wait_until(lambda: browser.js("[...document.querySelectorAll('.tile img')].every(i => i.naturalWidth > 0)"),
               30, "the tiles' latest frames")
    wait_until(lambda: browser.js("document.querySelectorAll('.tile .state')[0].textContent") in
               ("watching", "anomaly", "warming up"), 20, "a camera state")
    # an event that has ended (its clip written) appears in the list, pushed by the server
    wait_until(lambda: [e for e in served.store.list() if e["end_time"] and e["has_clip"]], 60, "an ended event")
    wait_until(lambda: browser.js("[...document.querySelectorAll('.event')].filter(e => "
                                  "!e.textContent.includes('in progress')).length") >= 1, 20, "the event in the list")
    wait_until(lambda: browser.js("(() => { const i = [...document.querySelectorAll('.event img')]"
                                  ".find(i => i.complete && i.naturalWidth > 0); return i ? i.naturalWidth : 0 })()")
               == 128, 20, "a decoded snapshot thumbnail")
    # the clip plays: pick an ended event, wait for the video to have data and a duration
    ev_id = browser.js("(() => { const li = [...document.querySelectorAll('.event')].find(e => "
                       "!e.textContent.includes('in progress')); li.click(); return li.dataset.id })()")
    state = wait_until(lambda: browser.js("(() => { const v = document.getElementById('clip'); "
                                          "return v.readyState >= 2 && v.duration > 0 && !v.error ? "
                                          "{ready: v.readyState, duration: v.duration, w: v.videoWidth} : null })()"),
                       20, "the clip to load")
    # at least 5 frames of 20 fps: on a loaded machine the live path drops frames it cannot keep up
    # with (a 0.45 s clip was seen while a benchmark shared the 2 cores), so the length is not fixed
    assert state["w"] == 128 and state["duration"] > 0.25, state
    played = browser.js("(async () => { const v = document.getElementById('clip'); await v.play(); "
                        "await new Promise(r => setTimeout(r, 600)); return v.currentTime })()")
    assert played > 0.1
    # a review click is stored
    browser.js("document.getElementById('false-alarm').click()")
    wait_until(lambda: served.store.get(ev_id)["verdict"] == "false_alarm", 10, "the review in the database")
    wait_until(lambda: browser.js("document.getElementById('verdict').textContent") == "false alarm", 10,
               "the verdict shown")
    # no script errors, and nothing loaded from elsewhere
    assert browser.errors == []
    resources = browser.js("performance.getEntriesByType('resource').map(r => r.name)")
    assert all(r.startswith(served.url) for r in resources), resources
