"""The HTML report in a real headless browser (Debian's chromium), and pixel AUC by hand."""

import re
import shutil
import subprocess

import numpy as np
import pytest

from vigil.evaluate import pixel_auc

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]


def test_pixel_auc_by_hand():
    maps = [np.array([[[0.9, 0.1], [0.2, 0.8]]], dtype=np.float32)]
    masks = [np.array([[[1, 0], [0, 1]]], dtype=bool)]
    assert pixel_auc(maps, masks, size=(2, 2)) == pytest.approx(1.0)
    maps = [np.array([[[0.1, 0.9], [0.2, 0.8]]], dtype=np.float32)]
    # positives {0.1, 0.8}, negatives {0.9, 0.2}: 0.8 > 0.2 only -> 1/4
    assert pixel_auc(maps, masks, size=(2, 2)) == pytest.approx(0.25)


@pytest.fixture(scope="module")
def report(trained_truesight, synthetic_root, tmp_path_factory):
    from vigil.report import build_report

    tmp = tmp_path_factory.mktemp("report")
    trained_truesight.save(tmp / "run")
    return build_report(tmp / "run", synthetic_root, tmp / "report.html", progress=False)


def test_report_is_self_contained(report):
    page = report.read_text()
    assert "<h2>Metrics</h2>" in page and "pixel AUC" in page and "micro AUC" in page
    assert page.count("data:image/png;base64,") >= 2 + 3 + 6          # curves, timelines, top frames
    assert not re.search(r'src="(?!data:)', page)                       # nothing fetched from elsewhere


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it with apt-get)")
def test_report_in_headless_chromium(report, tmp_path):
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *FLAGS, *profile, "--dump-dom", report.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert 'data-ready="1"' in body, "the page's load handler did not run"
    assert 'data-errors="0"' in body, "script errors in the console"
    shown, total = map(int, re.search(r'data-images="(\d+)/(\d+)"', body).groups())
    assert total >= 11 and shown == total, f"{total - shown} pictures failed to decode"
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *FLAGS, *profile, f"--screenshot={shot}", "--window-size=1200,2400", report.as_uri()],
                   capture_output=True, timeout=120)
    import cv2

    img = cv2.imread(str(shot))
    assert img is not None and img.shape[:2] == (2400, 1200)
    assert img.std() > 20, "the screenshot is blank"


def test_report_of_ocrgan_video_embeds_attention(synthetic, synthetic_root, tmp_path):
    from vigil.models.ocrgan_video.detector import OcrGanVideo
    from vigil.report import build_report

    det = OcrGanVideo(progress=False, size=32, gen_channels=8, feat_channels=16, heads=4, epochs=1,
                      batch_size=4).fit(synthetic.train[:3])
    det.save(tmp_path / "run")
    page = build_report(tmp_path / "run", synthetic_root, tmp_path / "r.html", progress=False).read_text()
    assert "Temporal attention" in page
    assert page.count("data:image/png;base64,") >= 2 + 3 + 6 + 1
