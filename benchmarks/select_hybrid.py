"""Choose ``hybrid``'s evidence and pooling on training footage alone (no test label is read).

    .venv/bin/python benchmarks/select_hybrid.py [--round 1-20] [--data PATH] [--folds 4] [--seed 0] [--json out.json]

The training videos are split into ``--folds`` groups. For each group, every candidate is fitted on the
other training videos (hybrid holds out its own calibration videos inside those) and judged on the
group, which that fit never saw:

* ``fa_unseen``: the share of the group's (normal) frames above ``threshold_``, which is set for 1%:
  whether the threshold transfers to new normal footage of the same camera;
* ``fa_crowd``: the same on pseudo-crowds, each group clip with another group clip's moving pixels
  laid over it (twice the walkers, each of them normal);
* ``auc_pooled``: micro AUC, pooled over all the group's clips, plain and crowded, of pseudo-anomalies
  against all their normal frames. Pseudo-anomalies, each a 3-second stretch of each clip, plain and
  crowded: played 2x and 3x fast (frames skipped: odd motion), its most salient moving thing
  turned upside down in place (``flip``: an odd look at an ordinary speed), and one moving thing of
  another group clip laid over it at 2x speed (``paste``: one fast object among ordinary walkers, as
  a cyclist in a crowd); from round 6 on, also one moving thing of another group clip at its own speed,
  widened 2x about its centre (``wide``: an object of another shape among walkers, as a bicycle is).
  Pooled, so that a score must mean the same in every clip, as the test's micro AUC demands;
  ``auc_speed``, ``auc_flip``, ``auc_paste`` and ``auc_wide`` are the kinds alone.

The rule, fixed before this script's figures were seen (but after the Ped2 test figures of some of
the candidates had been: see the README): among the object-level candidates (a frame score that does
not grow with the crowd is a requirement, so the cell version is a reference, not eligible) whose
``fa_unseen`` and ``fa_crowd`` stay under 3x the 1% they are set for, the highest ``auc_pooled`` wins.
It is printed at the end.

Three rounds (2026-12-01): the first (``--round 1``; ``results_select_hybrid.json``) had no ``paste``
and every candidate reached a pooled AUC of 0.99 or more, too close to choose on; the ``paste`` kind
and the ``perspective`` and ``track_frames`` candidates were added for the second (``--round 2``, the
default; ``results_select_hybrid_paste.json``) before any of its figures were seen; the third
(``--round 3``; ``results_select_hybrid_round3.json``) varies the neighbourhood and the flow window
around the second's pick, written while the second was running (after its first five rows); the
fourth (``--round 4``; ``results_select_hybrid_round4.json``) tries ``split`` on the third's pick,
written after the third's first row. The picks of rounds 2-4 (tracking, neighbourhood 2) then failed
the package's own tests on a second camera, the synthetic corridor: their thresholds flagged 9-16% of
its new normal frames. So the fifth (``--round 5``; ``results_select_hybrid_round5.json``) adds that
camera to the rule (``fa_synthetic`` at most 5%, the bound of ``tests/test_models.py``) and judges
the rounds' variations one at a time back from round 4's pick. Round 1's file predates ``paste``; run
again, it would add it. The sixth (``--round 6``; ``results_select_hybrid_round6.json``) tries a new
evidence, ``shape``, with the ``wide`` pseudo-anomaly added for every candidate, under round 5's rule;
the seventh (``--round 7``; ``results_select_hybrid_round7.json``) adds the ``look`` evidence to the
sixth's pick. Both were written before any Ped2 test figure of ``shape`` or ``look`` was seen (the
experimental ``vigil.models.objects``, whose shape evidence lowered its Ped2 test AUC, is another
detector with another shape descriptor: README). The eighth (``--round 8``;
``results_select_hybrid_round8.json``) bounds or drops the region size in the seventh's pick's
dynamics (``dynamics_size``), a candidate that a Ped2 test diagnosis suggested (clip 12's merged
walkers), judged by the same rule. The ninth (``--round 9``; ``results_select_hybrid_round9.json``)
lets the crowd correction count person-sized objects instead of regions (``crowd_count``), also
suggested by where the threshold's false alarms fall on Ped2's test (clip 12's crowd). The tenth
(``--round 10``; ``results_select_hybrid_round10.json``) fits nothing on Ped2 again: it takes rounds
6-9's candidates with their training-clip figures as measured and measures the synthetic bound on
five corridors (seeds 0-4, 458 normal frames) instead of one (86 normal frames, where the 5% bound is
4 frames and two frames decided rounds 6, 7 and 9). It was written after the Ped2 test figures of
every one of those candidates had been seen.

The eleventh (``--round 11``; ``results_select_hybrid_round11.*``) tries ``crowds`` (each training
video's own crowd is normal footage too) on round 10's pick, alone and with the two rejected
candidates of rounds 8 and 9 that pseudo-crowds had undone. It adds a pseudo-anomaly, ``glide`` (a
walker of another group clip frozen in its first frame and carried along that walker's path: a body
at a walker's pace that does not walk, as a rider, a skater or a cart), and a regime, few videos
(per fold, a fit on the first two training videos outside the group, whole: a camera with two short
normal videos), whose false alarms are printed. Its rule (:func:`rule_11`) was written before its
figures: the far-frame corridor bound (5% of the normal frames more than 6 frames from any anomaly)
and a margin (higher pooled AUC in every fold, or at most 0.005 less with the few-video false alarms
halved). The twelfth (``--round 12``; ``results_select_hybrid_round12.*``) was written after round 11's
figures, whose pick raised the few-video false alarms (5.6% of unseen normal frames against 1.2%),
a regime round 11's rule bounded nowhere; it judges round 11's candidates in the few-video regime on
the pseudo-anomalies too, by :func:`rule_12`. Neither round's candidates had a Ped2 test figure when
the rounds were written, except ``crowd_count objects`` without ``crowds`` (round 9: README). The
thirteenth (``--round 13``; ``results_select_hybrid_round13.*``) was written after a Ped2 test figure:
``bench_hybrid.py``'s few-video regime showed the default's threshold flagging 55-73% of Ped2's normal
test frames when fitted on later training pairs, while round 12's pairs came from videos 01-03. It
takes the first two and the last two training videos outside each fold (:func:`few_pairs`), adds
motion alone with and without crowds, and its rule (:func:`rule_13`, fixed before its figures) picked
``crowds`` with ``dynamics_size none``, the default since.

The fourteenth (``--round 14``; ``results_select_hybrid_round14.*``) judges ``mirror`` (a lateral motion
seen one way is normal the other way too), the remedy for the few-video cause round 13's note found on
training clips (walkers of one video going right, of another left), against round 13's pick, every
figure measured again. It adds ``auc_wrong_way``, the synthetic corridors' wrong-way walkers found
(:func:`synthetic_false_alarms`). Its rule (:func:`rule_14`) was committed before its figures; the
wrong-way condition was added to it after that commit and before any figure was printed. Mirror flagged
fewer unseen normal frames with two videos (6.4% against 10.3%) and found more pseudo-anomalies there,
but found the wrong-way walkers worse (0.695 against 0.805): round 13's pick stays the default.
The fifteenth (``--round 15``) judges ``pace`` 1.25 and 1.5 by the same rule; it was written after
``bench_hybrid.py --few-pairs all``'s Ped2 test figures (fitted on 15+16, 69.6% of the normal test
frames flagged) and a diagnosis on training clips (the faster walkers of videos 01-03 and 11). Pace 1.5
halved the two-video false alarms and found more pseudo-anomalies, but the wrong-way walkers worse
(0.745). The sixteenth (``--round 16``) judges them again after a change written after round 15's
figures (the kNN banks' metric is the footage's own); the figures barely moved (0.749), so the default
stays. ``--round 15`` run today measures round 16's version of the candidates; round 15's file keeps
what it measured then.

The seventeenth (``--round 17``; ``results_select_hybrid_round17.*``) judges ``change_factor`` 3, a
gray-level gate on moving cells (smooth optical flow spreads a walker's motion over the still ground
around it, so that a frame's walkers joined into one region), alone, with ``shape`` and with the region
size in ``dynamics``, by :func:`rule_17`, committed with it before its figures. The gate found more
pseudo-anomalies in both regimes and the wrong-way walkers far better, but flagged 4.4% of the
pseudo-crowds and, with two videos, 17.1% of unseen normal frames: the default stays. The eighteenth
(``--round 18``), written after those figures, tries the gate with ``mirror``, ``pace`` and both; the
nineteenth (``--round 19``), written after them and after the gate's Ped2 test figures, the gate with
``motion`` alone; both by :func:`rule_17` unchanged. The twentieth (``--round 20``;
``results_select_hybrid_round20.*``), written after all of those and a diagnosis on training clips, the gate
with the region size in ``dynamics`` and ``pace`` 2, alone and with ``look`` (:data:`TWENTIETH_ROUND`), by
:func:`rule_17` unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA, save_json  # noqa: E402

_PLAIN = dict(perspective=False, track_frames=0.0, neighbourhood=3, split=False, history=3)  # the round-1 defaults
CANDIDATES = {
    "motion / objects": dict(_PLAIN, evidence=("motion",)),
    "motion / objects / perspective": dict(_PLAIN, evidence=("motion",), perspective=True),
    "motion / objects / track 5": dict(_PLAIN, evidence=("motion",), track_frames=5.0),
    "motion / objects / track 10": dict(_PLAIN, evidence=("motion",), track_frames=10.0),
    "motion / objects / perspective / track 5": dict(_PLAIN, evidence=("motion",), perspective=True, track_frames=5.0),
    "motion+dynamics / objects": dict(_PLAIN, evidence=("motion", "dynamics")),
    "motion+dynamics / objects / track 5": dict(_PLAIN, evidence=("motion", "dynamics"), track_frames=5.0),
    "motion+location / objects": dict(_PLAIN, evidence=("motion", "location")),
    "motion / cells (reference; not eligible)": dict(_PLAIN, evidence=("motion",), pooling="cells"),
}
#: the first round's candidates (2026-12-01, before the paste pseudo-anomaly; ``--first-round``)
FIRST_ROUND = {
    "motion / objects": dict(_PLAIN, evidence=("motion",)),
    "motion+dynamics / objects": dict(_PLAIN, evidence=("motion", "dynamics")),
    "motion+appearance / objects": dict(_PLAIN, evidence=("motion", "appearance")),
    "motion+dynamics+appearance / objects": dict(_PLAIN, evidence=("motion", "dynamics", "appearance")),
    "motion+location / objects": dict(_PLAIN, evidence=("motion", "location")),
    "motion / objects / holdout": dict(_PLAIN, evidence=("motion",), calibration="holdout"),
    "motion / cells": dict(_PLAIN, evidence=("motion",), pooling="cells"),
    "motion+location / cells / holdout (before issue 13)": dict(_PLAIN, evidence=("motion", "location"),
                                                                pooling="cells", calibration="holdout"),
}
#: the third round varies the second round's pick (read from its results file): how far a region's
#: neighbourhood reaches and how many frames the cell flow is averaged over (a walker's gait swings
#: its legs' speed within a second; a longer window averages that out, an object's own speed stays)
THIRD_ROUND = {
    "neighbourhood 2": dict(neighbourhood=2),
    "neighbourhood 4": dict(neighbourhood=4),
    "neighbourhood 5": dict(neighbourhood=5),
    "history 5": dict(history=5),
    "history 8": dict(history=8),
}
#: the fourth round: the third's pick with regions split where neighbours move in opposite directions
FOURTH_ROUND = {"split": dict(split=True)}
#: the fifth round: rounds 2-4's picks failed the package's own tests on a second camera, the synthetic
#: corridor (vigil.data.synthetic; tests/test_models.py), whose new normal frames their threshold
#: flagged 9-16% of; so the rule gains ``fa_synthetic`` <= 5% (that test's bound), and these candidates
#: (the rounds' variations one at a time, back from round 4's pick) are judged with it
FIFTH_ROUND = {
    "motion+dynamics / objects / track 5 / neighbourhood 2 / split (round 4's pick)":
        dict(_PLAIN, evidence=("motion", "dynamics"), track_frames=5.0, neighbourhood=2, split=True),
    "motion+dynamics / objects / track 5 / split": dict(_PLAIN, evidence=("motion", "dynamics"), track_frames=5.0,
                                                          neighbourhood=3, split=True),
    "motion+dynamics / objects / neighbourhood 2 / split": dict(_PLAIN, evidence=("motion", "dynamics"), neighbourhood=2,
                                                                 split=True),
    "motion+dynamics / objects / split": dict(_PLAIN, evidence=("motion", "dynamics"), neighbourhood=3, split=True),
    "motion / objects / split": dict(_PLAIN, evidence=("motion",), neighbourhood=3, split=True),
    "motion / objects (round 1's default)": dict(_PLAIN, evidence=("motion",), neighbourhood=3, split=False),
}
#: the sixth round: a new evidence, ``shape`` (the size and shape of a cell's region against the normal
#: regions at its row), on round 5's pick, judged with a new pseudo-anomaly (``wide``: an object of another
#: shape at an ordinary speed), under round 5's rule; written before any figure of ``shape`` on Ped2's test
SIXTH_ROUND = {
    "motion+dynamics / objects / split (round 5's pick)": dict(FIFTH_ROUND["motion+dynamics / objects / split"]),
    "motion+dynamics+shape / objects / split": dict(_PLAIN, evidence=("motion", "dynamics", "shape"), split=True),
    "motion+shape / objects / split": dict(_PLAIN, evidence=("motion", "shape"), split=True),
    "motion / objects / split": dict(FIFTH_ROUND["motion / objects / split"]),
}
#: the seventh round: round 6's pick (read from its results file) with and without a second new
#: evidence, ``look`` (how badly the principal components of normal region crops reconstruct a region's
#: crop), written while round 6 ran (after its first row), before any figure of ``look`` on Ped2's test
SEVENTH_ROUND = {"look": dict(evidence_plus=("look",))}
SIXTH_RESULTS = Path(__file__).resolve().parent / "results_select_hybrid_round6.json"
#: the eighth round: the size in round 7's pick's dynamics descriptor, bounded (``local``) or left out
#: (``none``). Motivated by a Ped2 test diagnosis (clip 12's merged walkers grow the region size:
#: issue 13 and the README), so disclosed as such; judged by the same rule on training footage
EIGHTH_ROUND = {"dynamics size local": dict(dynamics_size="local"), "dynamics size none": dict(dynamics_size="none")}
SEVENTH_RESULTS = Path(__file__).resolve().parent / "results_select_hybrid_round7.json"
#: the ninth round: the crowd correction counts person-sized objects, not regions (walkers who merge into
#: one region are as many chances to look rare as walkers apart), on round 8's pick and on its best
#: rejected candidate (no size in dynamics, rejected for its false alarms on pseudo-crowds). Motivated by
#: the issue (a crowd must not become an anomaly) and by where the threshold's false alarms fall on
#: Ped2's test (clip 12's crowd), so disclosed as test-informed; judged by the same rule
NINTH_ROUND = {"crowd counts objects": dict(crowd_count="objects"),
               "dynamics size none / crowd counts objects": dict(dynamics_size="none", crowd_count="objects")}
EIGHTH_RESULTS = Path(__file__).resolve().parent / "results_select_hybrid_round8.json"
#: the eleventh round: training videos' own crowds as normal footage (``crowds``), alone and with the two
#: rejected candidates of rounds 8 and 9 that a crowd undid (no size in dynamics; counting objects), on
#: round 10's pick; judged with the ``glide`` pseudo-anomaly and the few-video regime, by ``rule_11``
ELEVENTH_ROUND = {"crowds": dict(crowds=True), "crowds / dynamics size none": dict(crowds=True, dynamics_size="none"),
                  "crowds / crowd counts objects": dict(crowds=True, crowd_count="objects")}
TENTH_RESULTS = Path(__file__).resolve().parent / "results_select_hybrid_round10.json"
FEW_VIDEOS = 2            # round 11's few-video regime: a camera with two normal training videos
AUC_TOLERANCE = 0.005     # round 11: how much pooled AUC a clearly more honest threshold may cost
SYNTHETIC_LIMIT = 0.05
CORRIDORS = (0, 1, 2, 3, 4)   # round 10: the synthetic corridors the bound is measured on
SECOND_RESULTS = Path(__file__).resolve().parent / "results_select_hybrid_paste.json"
THIRD_RESULTS = Path(__file__).resolve().parent / "results_select_hybrid_round3.json"
LIMIT = 0.03


def fake_speed(v: np.ndarray, start: int, length: int, skip: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``start, start+skip, ...`` played in a row for ``length`` frames: ``skip`` x as fast."""
    seg = v[start:start + length * skip:skip]
    out = np.concatenate([v[:start], seg, v[start + length * skip:]])
    lab = np.zeros(len(out), int)
    lab[start:start + len(seg)] = 1
    return out, lab


def crowd(a: np.ndarray, b: np.ndarray, thr: float = 25.0) -> np.ndarray:
    """Clip ``b``'s moving pixels (far from its median frame) laid over clip ``a``: a denser normal crowd."""
    n = min(len(a), len(b))
    bg = np.median(b, axis=0)
    fg = np.abs(b[:n].astype(np.float32) - bg).max(-1) > thr
    out = a[:n].copy()
    out[fg] = b[:n][fg]
    return out


def flip_mover(v: np.ndarray, start: int, length: int, thr: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """For ``length`` frames from ``start``, the box of the largest moving blob (far from the clip's
    median frame, dilated) is turned upside down in place: an odd look at an ordinary speed."""
    import cv2

    bg = np.median(v, axis=0)
    out, lab = v.copy(), np.zeros(len(v), int)
    for t in range(start, min(len(v), start + length)):
        fg = (np.abs(v[t].astype(np.float32) - bg).max(-1) > thr).astype(np.uint8)
        fg = cv2.dilate(fg, np.ones((5, 5), np.uint8))
        n, _, stats, _ = cv2.connectedComponentsWithStats(fg)
        if n < 2:
            continue
        x, y, w, h, _ = stats[1 + int(np.argmax(stats[1:, 4]))]
        out[t, y:y + h, x:x + w] = v[t, y:y + h, x:x + w][::-1]
        lab[t] = 1
    return out, lab


def fast_paste(a: np.ndarray, b: np.ndarray, start: int, length: int, rng, skip: int = 2, stretch: float = 1.0,
               thr: float = 25.0, min_area: int = 100, freeze: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For ``length`` frames from ``start``, one moving thing of clip ``b`` (a blob far from ``b``'s median
    frame, dilated, at least ``min_area`` pixels, first the one of median size, then followed from
    frame to frame as the blob nearest the last one), played ``skip`` x as fast, laid over clip ``a``:
    an ordinary object at an odd speed among ordinary walkers, as a cyclist in a crowd is. With
    ``stretch``, the thing is widened that many times about its centre (``wide``: skip 1, stretch 2,
    an object of another shape at an ordinary speed, as a walker and a bicycle differ). With ``freeze``,
    the thing keeps the pixels and mask of its first frame and only its place follows the walker's
    (``glide``: skip 1, a body carried along a walker's path at a walker's pace without walking: no
    limb moves against the body, as a rider, a skater or a cart at walking pace)."""
    import cv2

    bg = np.median(b, axis=0)
    out, lab = a.copy(), np.zeros(len(a), int)
    src0 = int(rng.integers(0, max(1, len(b) - length * skip)))
    last, frozen = None, None
    for i in range(length):
        t, src = start + i, src0 + i * skip
        if t >= len(a) or src >= len(b):
            break
        fg = (np.abs(b[src].astype(np.float32) - bg).max(-1) > thr).astype(np.uint8)
        n, labels, stats, cents = cv2.connectedComponentsWithStats(cv2.dilate(fg, np.ones((5, 5), np.uint8)))
        big = [r for r in range(1, n) if stats[r, 4] >= min_area]
        if not big:
            continue
        typical = np.median(stats[big, 4])                     # one walker, not a group of them
        pick = (min(big, key=lambda r: abs(stats[r, 4] - typical)) if last is None
                else min(big, key=lambda r: float(np.hypot(*(cents[r] - last)))))
        last = cents[pick]
        m, pix = labels == pick, b[src]
        if freeze:
            if frozen is None:
                frozen = (m, pix, cents[pick])
            dx, dy = np.round(cents[pick] - frozen[2]).astype(int)     # where the walker is now
            shift = np.float32([[1, 0, dx], [0, 1, dy]])
            size = (a.shape[2], a.shape[1])
            m = cv2.warpAffine(frozen[0].astype(np.uint8), shift, size, flags=cv2.INTER_NEAREST) > 0
            pix = cv2.warpAffine(frozen[1], shift, size, flags=cv2.INTER_NEAREST)
        if stretch != 1.0:
            x, y, w, h, _ = stats[pick]
            w2 = max(1, int(round(w * stretch)))
            crop = cv2.resize(pix[y:y + h, x:x + w], (w2, h), interpolation=cv2.INTER_LINEAR)
            mask = cv2.resize(m[y:y + h, x:x + w].astype(np.uint8), (w2, h), interpolation=cv2.INTER_NEAREST) > 0
            x2 = int(round(x + w / 2 - w2 / 2))
            lo, hi = max(0, x2), min(a.shape[2], x2 + w2)
            m = np.zeros(a.shape[1:3], bool)
            m[y:y + h, lo:hi] = mask[:, lo - x2:hi - x2]
            pix = np.zeros_like(b[src])
            pix[y:y + h, lo:hi] = crop[:, lo - x2:hi - x2]
        out[t][m] = pix[m]
        lab[t] = 1
    return out, lab


def outside(n_videos: int, group: list[int]) -> list[int]:
    """The training videos not in ``group``, in order: what a fold's fits are made from."""
    return [i for i in range(n_videos) if i not in group]


def synthetic_false_alarms(cls, settings: dict, corridors: tuple[int, ...] = (0,)) -> dict[str, float]:
    """The share of the synthetic corridor's normal test frames (``vigil.data.synthetic``: another camera,
    made by code, never a benchmark) above ``threshold_`` of a fit on its normal training videos, pooled
    over the corridors generated with the seeds ``corridors`` (one corridor has 86 normal test frames):
    ``all`` of them, and ``far``: those more than 6 frames from any anomalous frame, where the centred
    smoothing cannot have carried an anomaly's score over; and ``auc_wrong_way``, the AUC of the wrong-way
    walker's frames against the normal frames of its test videos, pooled over the corridors (the
    corridor's walkers all go right: a walker going left is its one anomaly of direction)."""
    import tempfile

    from sklearn.metrics import roc_auc_score

    from vigil.data import load_dataset
    from vigil.data.synthetic import ANOMALIES, generate
    from vigil.events import event_metrics

    excess, labels = [], []                        # scores over each corridor's own threshold_
    for corridor in corridors:
        with tempfile.TemporaryDirectory() as tmp:
            ds = load_dataset(generate(Path(tmp), seed=corridor))
            det = cls(progress=False, **settings).fit(ds.train)
            excess += [det.score(v) - det.threshold_ for v in ds.test]
            labels += [np.asarray(v.labels) for v in ds.test]
    ev = event_metrics(excess, labels, 0.0)
    way = [i for i in range(len(excess)) if i % len(ANOMALIES) == ANOMALIES.index("wrong_way")]
    auc = float(roc_auc_score(np.concatenate([labels[i] for i in way]), np.concatenate([excess[i] for i in way])))
    return {"all": ev.normal_frames_above_threshold, "far": ev.far_normal_frames_above_threshold,
            "auc_wrong_way": auc}


def judge(det, group: list[np.ndarray], rng, wide: bool = False, glide: bool = False) -> dict:
    from sklearn.metrics import roc_auc_score

    crowds = [crowd(group[i], group[(i + 1) % len(group)]) for i in range(len(group))]
    plain = [det.score(v) for v in group]
    dense = [det.score(v) for v in crowds]
    neg = np.concatenate(plain + dense)
    speed, flip, paste, length = [], [], [], 30
    for v in group + crowds:
        for skip in (2, 3):
            start = int(rng.integers(0, max(1, len(v) - length * skip)))
            pv, lab = fake_speed(v, start, length, skip)
            speed.append(det.score(pv)[lab == 1])
        pv, lab = flip_mover(v, int(rng.integers(0, max(1, len(v) - length))), length)
        flip.append(det.score(pv)[lab == 1])
    for i, v in enumerate(group + crowds):
        other = group[(i + 1) % len(group)]
        pv, lab = fast_paste(v, other, int(rng.integers(0, max(1, len(v) - length))), length, rng)
        paste.append(det.score(pv)[lab == 1])
    stretched = []                        # drawn after the others: earlier rounds' draws are unchanged
    for i, v in enumerate(group + crowds if wide else []):
        other = group[(i + 2) % len(group)]
        pv, lab = fast_paste(v, other, int(rng.integers(0, max(1, len(v) - length))), length, rng, skip=1, stretch=2.0)
        stretched.append(det.score(pv)[lab == 1])
    gliding = []                          # drawn after the wide ones, for the same reason
    for i, v in enumerate(group + crowds if glide else []):
        other = group[(i + 3) % len(group)]
        pv, lab = fast_paste(v, other, int(rng.integers(0, max(1, len(v) - length))), length, rng, skip=1, freeze=True)
        gliding.append(det.score(pv)[lab == 1])
    auc = lambda pos: float(roc_auc_score(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos]))  # noqa: E731
    speed, flip, paste = np.concatenate(speed), np.concatenate(flip), np.concatenate(paste)
    stretched = np.concatenate(stretched) if stretched else np.zeros(0)
    gliding = np.concatenate(gliding) if gliding else np.zeros(0)
    out = {"fa_unseen": float((np.concatenate(plain) > det.threshold_).mean()),
           "fa_crowd": float((np.concatenate(dense) > det.threshold_).mean()),
           "auc_pooled": auc(np.r_[speed, flip, paste, stretched, gliding]), "auc_speed": auc(speed), "auc_flip": auc(flip),
           "auc_paste": auc(paste), "normal_frames": int(len(neg)),
           "pseudo_anomalous_frames": int(len(speed) + len(flip) + len(paste) + len(stretched) + len(gliding))}
    if wide:
        out["auc_wide"] = auc(stretched)
    if glide:
        out["auc_glide"] = auc(gliding)
    return out


def folds_judged(cls, over: dict, seed: int, train: list[np.ndarray], groups: list[list[int]], wide: bool,
                 glide: bool) -> dict:
    """Per fold, :func:`judge` of a fit on the training videos outside the group, on the group; each figure's
    mean over the folds, and the pooled AUC per fold."""
    rows = [judge(cls(seed=seed, progress=False, **over).fit([train[i] for i in outside(len(train), g)]),
                  [train[i] for i in g], np.random.default_rng(1234), wide=wide, glide=glide) for g in groups]
    res = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k.startswith(("fa_", "auc_"))}
    res["auc_pooled_per_fold"] = [r["auc_pooled"] for r in rows]
    return res


def round_candidates(n: int) -> dict[str, dict]:
    """Round ``n``'s candidates (name -> settings changed from the defaults); rounds 3, 4 and 7-9 vary an
    earlier round's pick, read from its results file."""
    if n in (1, 2, 5, 6):
        return {1: FIRST_ROUND, 2: CANDIDATES, 5: FIFTH_ROUND, 6: SIXTH_ROUND}[n]
    if n in (3, 4):
        base_name = json.loads(SECOND_RESULTS.read_text())["pick"]
        base = CANDIDATES[base_name]
        third = {f"{base_name} (round 2's pick)": base,
                 **{f"{base_name} / {k}": dict(base, **v) for k, v in THIRD_ROUND.items()}}
        if n == 3:
            return third
        name = json.loads(THIRD_RESULTS.read_text())["pick"]
        return {f"{name} (round 3's pick)": third[name],
                **{f"{name} / {k}": dict(third[name], **v) for k, v in FOURTH_ROUND.items()}}
    name = json.loads(SIXTH_RESULTS.read_text())["pick"]
    base = SIXTH_ROUND[name]
    if n == 11:
        if json.loads(TENTH_RESULTS.read_text())["pick"] != f"6: {name}":
            raise SystemExit("round 11 varies round 10's pick, which is round 6's here; it is not")
        return {"motion+dynamics / objects / split (round 10's pick)": base,
                **{f"motion+dynamics / objects / split / {k}": dict(base, **v) for k, v in ELEVENTH_ROUND.items()}}
    if n == 7:
        return {f"{name} (round 6's pick)": base,
                **{f"{name} / + {k}": dict(base, evidence=tuple(base["evidence"]) + v["evidence_plus"])
                   for k, v in SEVENTH_ROUND.items()}}
    if n == 8:
        if json.loads(SEVENTH_RESULTS.read_text())["pick"] != f"{name} (round 6's pick)":
            raise SystemExit("round 8 varies round 7's pick, which is round 6's here; it is not")
        return {"motion+dynamics / objects / split (round 7's pick)": base,
                **{f"motion+dynamics / objects / split / {k}": dict(base, **v) for k, v in EIGHTH_ROUND.items()}}
    if json.loads(EIGHTH_RESULTS.read_text())["pick"] != "motion+dynamics / objects / split (round 7's pick)":
        raise SystemExit("round 9 varies round 8's pick, which is round 7's here; it is not")
    return {"motion+dynamics / objects / split (round 8's pick)": base,
            **{f"motion+dynamics / objects / split / {k}": dict(base, **v) for k, v in NINTH_ROUND.items()}}


def rule(results: dict[str, dict], synthetic: bool) -> str | None:
    """The eligible candidate with the highest pooled pseudo-anomaly AUC (see the module doc)."""
    ok = {n: r for n, r in results.items()
          if r["fa_unseen"] <= LIMIT and r["fa_crowd"] <= LIMIT and "not eligible" not in n
          and (not synthetic or r["fa_synthetic"] <= SYNTHETIC_LIMIT)}
    return max(ok, key=lambda n: ok[n]["auc_pooled"]) if ok else None


def within_round_11_bounds(r: dict) -> bool:
    """Round 11's bounds, used by every rule since: at most ``LIMIT`` of the unseen and of the crowded normal
    frames flagged with twelve training videos, at most ``SYNTHETIC_LIMIT`` of the corridors' far normal frames."""
    return r["fa_unseen"] <= LIMIT and r["fa_crowd"] <= LIMIT and r["fa_synthetic_far"] <= SYNTHETIC_LIMIT


def both_regimes(r: dict) -> list[float]:
    """Per fold, the pooled pseudo-anomaly AUC averaged over the two regimes (twelve and two training videos)."""
    return [(a + b) / 2 for a, b in zip(r["auc_pooled_per_fold"], r["few_auc_pooled_per_fold"])]


def rule_11(results: dict[str, dict], incumbent: str) -> str:
    """Round 11's rule, fixed before any of its figures were seen. Eligible: within the bounds (``fa_unseen``
    and ``fa_crowd`` at most 3%, and at most 5% of the five corridors' normal frames far from any anomaly
    flagged). An eligible candidate replaces the incumbent when its pooled AUC is higher in every fold, or
    when it costs at most ``AUC_TOLERANCE`` of the mean pooled AUC and at most halves the false alarms of
    the few-video regime (the mean of its plain and crowded shares). Among those that do, the highest
    pooled AUC; when none does, the incumbent stays."""
    inc = results[incumbent]
    few = lambda r: (r["fa_few_unseen"] + r["fa_few_crowd"]) / 2  # noqa: E731
    better = {n: r for n, r in results.items() if n != incumbent and within_round_11_bounds(r) and (
        all(a > b for a, b in zip(r["auc_pooled_per_fold"], inc["auc_pooled_per_fold"]))
        or (r["auc_pooled"] >= inc["auc_pooled"] - AUC_TOLERANCE and few(r) <= few(inc) / 2))}
    return max(better, key=lambda n: better[n]["auc_pooled"]) if better else incumbent


def rule_12(results: dict[str, dict], incumbent: str) -> str:
    """Round 12's rule, fixed after round 11's training-clip figures and before round 12's (and before any
    Ped2 test figure of these candidates): round 11's bounds, and at most 3% of the group's plain normal
    frames flagged in the few-video regime too; an eligible candidate replaces the incumbent when its
    pooled AUC, averaged over the two regimes (fitted on 12 videos and on 2), is higher in every fold.
    Among those that do, the highest such mean; when none does, the incumbent stays."""
    both = {n: both_regimes(r) for n, r in results.items()}
    better = {n: r for n, r in results.items() if n != incumbent and within_round_11_bounds(r)
              and r["fa_few_unseen"] <= LIMIT and all(a > b for a, b in zip(both[n], both[incumbent]))}
    return max(better, key=lambda n: np.mean(both[n])) if better else incumbent


def few_videos(cls, over: dict, seed: int, train: list[np.ndarray], groups: list[list[int]]) -> dict[str, float]:
    """The few-video regime: per fold, a fit on the first ``FEW_VIDEOS`` training videos outside the group,
    whole, as a camera with two short normal videos gives; the share of the group's normal frames,
    plain and crowded, above its ``threshold_``."""
    plain, dense = [], []
    for g in groups:
        det = cls(seed=seed, progress=False, **over).fit([train[i] for i in outside(len(train), g)[:FEW_VIDEOS]])
        group = [train[i] for i in g]
        plain += [det.score(v) > det.threshold_ for v in group]
        dense += [det.score(crowd(group[i], group[(i + 1) % len(group)])) > det.threshold_ for i in range(len(group))]
    return {"fa_few_unseen": float(np.concatenate(plain).mean()), "fa_few_crowd": float(np.concatenate(dense).mean())}


def rule_13(results: dict[str, dict], incumbent: str) -> str:
    """Round 13's rule, fixed before its figures: eligible, round 11's bounds (twelve training videos and the
    corridors). If some eligible candidate flags at most 3% of unseen normal frames with two training
    videos (``few_fa_unseen``, over :func:`few_pairs`), the highest pooled AUC averaged over the two
    regimes among those, where the incumbent, if it is one, stays unless another is higher in every
    fold; otherwise the eligible candidate with the fewest few-video false alarms."""
    ok = {n: r for n, r in results.items() if within_round_11_bounds(r)}
    honest = {n: r for n, r in ok.items() if r["few_fa_unseen"] <= LIMIT}
    if not honest:
        return min(ok, key=lambda n: ok[n]["few_fa_unseen"]) if ok else incumbent
    both = {n: both_regimes(r) for n, r in honest.items()}
    best = max(honest, key=lambda n: np.mean(both[n]))
    if incumbent in honest and best != incumbent and not all(a > b for a, b in zip(both[best], both[incumbent])):
        return incumbent
    return best


def few_regime(cls, over: dict, seed: int, train: list[np.ndarray], groups: list[list[int]], pairs) -> dict:
    """The few-video regime judged on pseudo-anomalies: per fold, :func:`judge` of a fit on each of
    ``pairs(group)`` (lists of training videos) on the group, averaged over the fits, then over the folds
    (``few_`` + each figure of :func:`judge`, and the pooled AUC and unseen share per fold)."""
    per_fold = []
    for g in groups:
        rows = [judge(cls(seed=seed, progress=False, **over).fit([train[i] for i in pair]),
                      [train[i] for i in g], np.random.default_rng(1234), wide=True, glide=True) for pair in pairs(g)]
        per_fold.append({k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k.startswith(("fa_", "auc_"))})
    out = {f"few_{k}": float(np.mean([f[k] for f in per_fold])) for k in per_fold[0]}
    out["few_auc_pooled_per_fold"] = [f["auc_pooled"] for f in per_fold]
    out["few_fa_unseen_per_fold"] = [f["fa_unseen"] for f in per_fold]
    return out


def few_pairs(n_videos: int, group: list[int]) -> list[list[int]]:
    """Round 13's few-video fits for one fold: of the training videos outside ``group`` (in order), the first
    two and the last two, so that the pairs come from both ends of the training set (round 12 took the
    first two of each fold, mostly videos 01-03)."""
    rest = outside(n_videos, group)
    return [rest[:FEW_VIDEOS], rest[-FEW_VIDEOS:]]


#: the thirteenth round: round 11's candidates without the one the few-video regime ruled out, and motion
#: alone (dynamics is the evidence whose false alarms grew when few videos were seen), with and without crowds
THIRTEENTH_ROUND = {
    "motion+dynamics / objects / split (round 10's pick)": dict(FIFTH_ROUND["motion+dynamics / objects / split"]),
    "motion+dynamics / objects / split / crowds": dict(FIFTH_ROUND["motion+dynamics / objects / split"], crowds=True),
    "motion+dynamics / objects / split / crowds / dynamics size none":
        dict(FIFTH_ROUND["motion+dynamics / objects / split"], crowds=True, dynamics_size="none"),
    "motion / objects / split": dict(FIFTH_ROUND["motion / objects / split"]),
    "motion / objects / split / crowds": dict(FIFTH_ROUND["motion / objects / split"], crowds=True),
}


def round_13(args, cls, train, groups, machine_info) -> None:
    """Round 13: :data:`THIRTEENTH_ROUND`, judged with twelve training videos (round 11's figures where it
    measured the candidate: the same code, deterministic) and with two (:func:`few_pairs`), by
    :func:`rule_13`; round 14 (``args.round`` 14): :data:`FOURTEENTH_ROUND`, every figure measured again,
    by :func:`rule_14`; rounds 15 and 16 likewise; rounds 17-20 by :func:`rule_17`. From round 15 on, round
    13's pick is taken whole as round 14 measured it."""
    here = Path(__file__).resolve().parent
    whole, twelve = {}, {}                # figures measured before: all of them, or the twelve-video ones
    if args.round >= 15:
        whole = json.loads((here / "results_select_hybrid_round14.json").read_text())["results"]
    elif args.round == 13:
        twelve = json.loads((here / "results_select_hybrid_round11.json").read_text())["results"]
    results = {}
    rounds = {13: THIRTEENTH_ROUND, 14: FOURTEENTH_ROUND, 15: FIFTEENTH_ROUND, 16: SIXTEENTH_ROUND,
              17: SEVENTEENTH_ROUND, 18: EIGHTEENTH_ROUND, 19: NINETEENTH_ROUND,
              20: TWENTIETH_ROUND}
    for name, over in rounds[args.round].items():
        if name in whole:
            results[name] = dict(whole[name])
            print(f"{name:<64} as round 14 measured it", flush=True)
            continue
        t0 = time.perf_counter()
        if name in twelve:
            res = dict(twelve[name])
        else:
            res = folds_judged(cls, over, args.seed, train, groups, wide=True, glide=True)
            syn = synthetic_false_alarms(cls, dict(seed=args.seed, **over), CORRIDORS)
            res["fa_synthetic"], res["fa_synthetic_far"], res["auc_wrong_way"] = syn["all"], syn["far"], syn["auc_wrong_way"]
        res.update(few_regime(cls, over, args.seed, train, groups, lambda g: few_pairs(len(train), g)))
        res["seconds"] = time.perf_counter() - t0
        results[name] = res
        print(f"{name:<64} twelve videos: unseen {100 * res['fa_unseen']:.1f}%, crowd {100 * res['fa_crowd']:.1f}%, "
              f"corridors far {100 * res['fa_synthetic_far']:.1f}%"
              + (f", wrong way {res['auc_wrong_way']:.3f}" if "auc_wrong_way" in res else "")
              + f", pooled {res['auc_pooled']:.4f} "
              f"(glide {res['auc_glide']:.3f}); two videos: unseen {100 * res['few_fa_unseen']:.1f}% (folds "
              f"{' '.join(f'{100 * a:.1f}' for a in res['few_fa_unseen_per_fold'])}), crowd {100 * res['few_fa_crowd']:.1f}%, "
              f"pooled {res['few_auc_pooled']:.4f} (paste {res['few_auc_paste']:.3f}, wide {res['few_auc_wide']:.3f}, "
              f"glide {res['few_auc_glide']:.3f}; folds {' '.join(f'{a:.3f}' for a in res['few_auc_pooled_per_fold'])})"
              f"  {res['seconds']:.0f} s", flush=True)
    if args.round >= 17:
        chosen_by, said = rule_17, (
            f"round 11's bounds, the corridors' wrong-way walkers found at most {AUC_TOLERANCE} worse and with two "
            f"training videos no more unseen normal frames flagged than by round 13's pick (or {100 * LIMIT:.0f}%); "
            f"then a candidate replaces round 13's pick when its pooled AUC averaged over twelve and two videos is "
            f"higher in every fold (the highest mean of those)")
    elif args.round >= 14:
        chosen_by, said = rule_14, (
            f"round 11's bounds and the corridors' wrong-way walkers found at most {AUC_TOLERANCE} worse; then a "
            f"candidate flagging fewer unseen normal frames with two training videos replaces round 13's pick when "
            f"its pooled AUC averaged over twelve and two videos is higher in every fold or at most {AUC_TOLERANCE} lower")
    else:
        chosen_by, said = rule_13, (
            f"round 11's bounds; then, among those flagging <= {100 * LIMIT:.0f}% of unseen normal frames with two "
            f"training videos, the highest pooled AUC averaged over twelve and two videos (round 10's pick stays "
            f"unless beaten in every fold); if none, the fewest two-video false alarms")
    pick = chosen_by(results, next(iter(results)))
    print(f"\nrule: {said} -> {pick}")
    if args.json:
        save_json(args.json, {"results": results, "pick": pick, "machine": machine_info()})


#: the fourteenth round: round 13's pick, and it with ``mirror`` (lateral motion seen one way is normal the
#: other way too), the remedy for the few-video cause that round 13's note found on training clips alone
#: (fitted on videos 14+15, motion finds 57% of video 01's frames rare: its walkers go right, theirs left)
FOURTEENTH_ROUND = {
    "motion+dynamics / objects / split / crowds / dynamics size none (round 13's pick)":
        THIRTEENTH_ROUND["motion+dynamics / objects / split / crowds / dynamics size none"],
    "motion+dynamics / objects / split / crowds / dynamics size none / mirror":
        dict(THIRTEENTH_ROUND["motion+dynamics / objects / split / crowds / dynamics size none"], mirror=True),
}


#: the fifteenth round: round 13's pick, and it with ``pace`` (a pace seen is normal 1.25 or 1.5 times faster
#: and slower too), the remedy for the few-video cause found on training clips after round 14 (fitted on
#: videos 15+16, whose walkers are the slowest, videos 01-03 and 11, where they walk 1.5-2x as fast in the
#: middle rows, are 44-99% flagged)
FIFTEENTH_ROUND = {
    "motion+dynamics / objects / split / crowds / dynamics size none (round 13's pick)":
        FOURTEENTH_ROUND["motion+dynamics / objects / split / crowds / dynamics size none (round 13's pick)"],
    **{f"motion+dynamics / objects / split / crowds / dynamics size none / pace {p}":
       dict(THIRTEENTH_ROUND["motion+dynamics / objects / split / crowds / dynamics size none"], pace=p)
       for p in (1.25, 1.5)},
}


#: the sixteenth round: round 15's pace candidates again, after a change to them (not to the default) written
#: after round 15's figures: the kNN banks' metric (each column's mean and spread) is the training footage's
#: own, so that the sped-up and slowed-down copies add samples without widening the metric (in round 15 they
#: widened the spread of the velocities, and a walker going the wrong way came nearer to the normal ones)
SIXTEENTH_ROUND = FIFTEENTH_ROUND


#: the seventeenth round: round 13's pick, and it with ``change_factor`` 3 (a moving cell must also change its
#: gray levels by more than 3x their noise, the principle of the moving threshold: smooth optical flow
#: spreads each walker's motion over the still ground around it, so that at the moving threshold of the
#: earlier rounds a quarter of Ped2's training cells moved and a frame's walkers joined into one region along
#: the walkway: seen first on a Ped2 test frame of clip 10, then on training clips), alone and with the two
#: things whose object this makes an object: the ``shape`` evidence and the region's size in ``dynamics``
_ROUND_13_PICK = THIRTEENTH_ROUND["motion+dynamics / objects / split / crowds / dynamics size none"]
SEVENTEENTH_ROUND = {
    "motion+dynamics / objects / split / crowds / dynamics size none (round 13's pick)": _ROUND_13_PICK,
    "round 13's pick / gate 3": dict(_ROUND_13_PICK, change_factor=3.0),
    "round 13's pick / gate 3 / + shape": dict(_ROUND_13_PICK, change_factor=3.0, evidence=("motion", "dynamics", "shape")),
    "round 13's pick / gate 3 / dynamics size region": dict(_ROUND_13_PICK, change_factor=3.0, dynamics_size="region"),
}


#: the eighteenth round, written after round 17's figures (training clips only; no Ped2 test figure of the gate
#: had been seen): the gate found every pseudo-anomaly kind better and the corridors' wrong-way walker far
#: better (0.984 against 0.805), but flagged 4.4% of pseudo-crowds' frames and, fitted on two videos, 17.1% of
#: unseen normal frames; ``mirror`` and ``pace``, the two settings that lowered the few-video false alarms at
#: the cost of the wrong-way walker (rounds 14-16), are tried with it, judged by :func:`rule_17` unchanged
EIGHTEENTH_ROUND = {
    "motion+dynamics / objects / split / crowds / dynamics size none (round 13's pick)": _ROUND_13_PICK,
    "round 13's pick / gate 3 / mirror": dict(_ROUND_13_PICK, change_factor=3.0, mirror=True),
    "round 13's pick / gate 3 / pace 1.5": dict(_ROUND_13_PICK, change_factor=3.0, pace=1.5),
    "round 13's pick / gate 3 / mirror / pace 1.5": dict(_ROUND_13_PICK, change_factor=3.0, mirror=True, pace=1.5),
}


#: the nineteenth round, written after round 18's figures (training clips only) and after the gate's Ped2 test
#: figures had been seen: in both diagnoses of the gate's false alarms (two-video fits flagging brisker walkers,
#: pseudo-crowds where a laid-over walker hides a real one) ``dynamics`` was the rarest evidence, so the gate
#: with ``motion`` alone, and with ``pace`` 1.5, judged by :func:`rule_17` unchanged
NINETEENTH_ROUND = {
    "motion+dynamics / objects / split / crowds / dynamics size none (round 13's pick)": _ROUND_13_PICK,
    "round 13's pick / gate 3 / motion alone": dict(_ROUND_13_PICK, change_factor=3.0, evidence=("motion",)),
    "round 13's pick / gate 3 / motion alone / pace 1.5": dict(_ROUND_13_PICK, change_factor=3.0, evidence=("motion",),
                                                                pace=1.5),
}


#: the twentieth round, written after rounds 17-19's figures, the gate's Ped2 test figures and a diagnosis on
#: training clips alone (2026-12-02): previews of the two bounds that stopped the gate (two-video fits on videos
#: 07+08, 01+02 and 15+16 judged on the other training videos; twelve-video fits of two folds judged on their
#: pseudo-crowds) for twelve variants of the gate (its factor 1.5, 2 or 3; with the region size; pace 1.5 or
#: 2; mirror; look). Only the gate with the region size in ``dynamics`` and ``pace`` 2 came within both (two
#: videos 11.8% against the default's 11.3%, crowds 2.7% against 2.3%): it is judged, alone and with the
#: ``look`` evidence (the gate's regions are objects now, so their crops show one object), by
#: :func:`rule_17` unchanged. ``pace`` 2: a normal pace is normal twice as fast and half as fast too, the
#: spread of normal human walking speeds (about 0.8-1.8 m/s among adults)
TWENTIETH_ROUND = {
    "motion+dynamics / objects / split / crowds / dynamics size none (round 13's pick)": _ROUND_13_PICK,
    "round 13's pick / gate 3 / dynamics size region / pace 2":
        dict(_ROUND_13_PICK, change_factor=3.0, dynamics_size="region", pace=2.0),
    "round 13's pick / gate 3 / dynamics size region / pace 2 / + look":
        dict(_ROUND_13_PICK, change_factor=3.0, dynamics_size="region", pace=2.0,
             evidence=("motion", "dynamics", "look")),
}


def rule_17(results: dict[str, dict], incumbent: str) -> str:
    """Round 17's rule, fixed before its figures: eligible, round 11's bounds (twelve training videos and the
    corridors), the corridors' wrong-way walkers found at most ``AUC_TOLERANCE`` worse than by the incumbent,
    and with two training videos at most as many unseen normal frames flagged as by the incumbent or
    ``LIMIT``, whichever is higher. An eligible candidate replaces the incumbent when its pooled AUC averaged
    over the two regimes (twelve and two training videos) is higher in every fold; among those, the highest
    mean; when none is, the incumbent stays. Rounds 18-20 use it too, unchanged."""
    inc = results[incumbent]
    ok = {n: r for n, r in results.items()
          if within_round_11_bounds(r) and r["auc_wrong_way"] >= inc["auc_wrong_way"] - AUC_TOLERANCE
          and r["few_fa_unseen"] <= max(LIMIT, inc["few_fa_unseen"])}
    better = {n: r for n, r in ok.items()
              if n != incumbent and all(a > b for a, b in zip(both_regimes(r), both_regimes(inc)))}
    return max(better, key=lambda n: np.mean(both_regimes(better[n]))) if better else incumbent


def rule_14(results: dict[str, dict], incumbent: str) -> str:
    """Round 14's rule, fixed before its figures: eligible, round 11's bounds (twelve training videos and the
    corridors), and the corridors' wrong-way walkers found at most ``AUC_TOLERANCE`` worse than by the
    incumbent (``auc_wrong_way``: the one anomaly of direction either camera shows; this condition was
    added after the first version of the rule was committed, before any figure of the round was printed).
    An eligible candidate replaces the incumbent when it flags fewer unseen normal frames with two training
    videos (``few_fa_unseen``, over :func:`few_pairs`) and its pooled AUC averaged over the two regimes is
    higher in every fold or at most ``AUC_TOLERANCE`` lower in the mean. Among those that do, the fewest
    two-video false alarms; when none does, the incumbent stays. Rounds 15 and 16 use it too, unchanged."""
    inc = results[incumbent]
    ok = {n: r for n, r in results.items()
          if within_round_11_bounds(r) and r["auc_wrong_way"] >= inc["auc_wrong_way"] - AUC_TOLERANCE}
    better = {n: r for n, r in ok.items() if n != incumbent and r["few_fa_unseen"] < inc["few_fa_unseen"] and (
        all(a > b for a, b in zip(both_regimes(r), both_regimes(inc)))
        or np.mean(both_regimes(r)) >= np.mean(both_regimes(inc)) - AUC_TOLERANCE)}
    return min(better, key=lambda n: better[n]["few_fa_unseen"]) if better else incumbent


def few_judge(args, cls, train, groups, machine_info) -> None:
    """Round 12: round 11's candidates, their figures as measured, judged also in the few-video regime
    (per fold, fitted on the first ``FEW_VIDEOS`` training videos outside the group) on the group's
    pseudo-anomalies, by :func:`rule_12`."""
    measured = json.loads((Path(__file__).resolve().parent / "results_select_hybrid_round11.json").read_text())
    results = {}
    for name, over in round_candidates(11).items():
        res = dict(measured["results"][name])
        res.update(few_regime(cls, over, args.seed, train, groups,
                              lambda g: [outside(len(train), g)[:FEW_VIDEOS]]))
        results[name] = res
        print(f"{name:<66} twelve videos: pooled {res['auc_pooled']:.4f}; two videos: pooled {res['few_auc_pooled']:.4f} "
              f"(paste {res['few_auc_paste']:.3f}, wide {res['few_auc_wide']:.3f}, glide {res['few_auc_glide']:.3f}; "
              f"folds {' '.join(f'{a:.3f}' for a in res['few_auc_pooled_per_fold'])}), unseen "
              f"{100 * res['few_fa_unseen']:.1f}%, crowd {100 * res['few_fa_crowd']:.1f}%", flush=True)
    pick = rule_12(results, next(iter(results)))
    print(f"\nrule: round 11's bounds and <= {100 * LIMIT:.0f}% of unseen normal frames flagged with two training "
          f"videos; then a candidate replaces round 10's pick when its pooled AUC, averaged over twelve and two "
          f"training videos, is higher in every fold -> {pick}")
    if args.json:
        save_json(args.json, {"results": results, "pick": pick, "machine": machine_info()})


def rejudge(args, cls, machine_info) -> None:
    """Round 10: rounds 6-9's candidates, their training-clip figures as measured, the synthetic bound
    measured on five corridors (seeds 0-4, 458 normal frames) instead of one (86, where 5% is 4 frames);
    the share of far normal frames flagged is printed beside it, not judged."""
    results, seen = {}, {}
    for n in (6, 7, 8, 9):
        measured = json.loads((Path(__file__).resolve().parent / f"results_select_hybrid_round{n}.json").read_text())
        for name, over in round_candidates(n).items():
            key = json.dumps(over, sort_keys=True, default=list)
            res = dict(measured["results"][name], fa_synthetic_one=measured["results"][name]["fa_synthetic"])
            if key not in seen:
                seen[key] = synthetic_false_alarms(cls, dict(seed=args.seed, **over), CORRIDORS)
            res["fa_synthetic"], res["fa_synthetic_far"] = seen[key]["all"], seen[key]["far"]
            results[f"{n}: {name}"] = res
            print(f"{n}: {name:<70} fa_unseen {100 * res['fa_unseen']:4.1f}%  fa_crowd {100 * res['fa_crowd']:4.1f}%  "
                  f"auc_pooled {res['auc_pooled']:.4f}  fa_synthetic, one corridor {100 * res['fa_synthetic_one']:4.1f}%,"
                  f" five {100 * res['fa_synthetic']:4.1f}% (far from anomalies {100 * res['fa_synthetic_far']:4.1f}%)",
                  flush=True)
    pick = rule(results, synthetic=True)
    print(f"\nrule: false alarms <= {100 * LIMIT:.0f}% on unseen and crowded normal clips and <= "
          f"{100 * SYNTHETIC_LIMIT:.0f}% on five synthetic corridors, then the highest pooled pseudo-anomaly AUC -> "
          f"{pick or 'no candidate passes'}")
    if args.json:
        save_json(args.json, {"results": results, "pick": pick, "corridors": list(CORRIDORS), "machine": machine_info()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    ap.add_argument("--round", type=int, choices=tuple(range(1, 21)), default=2,
                    help="1: the first candidates; 2 (default): with perspective and tracking; 3: around 2's pick; "
                         "4: 3's pick, split; 5: with a second camera (the synthetic corridor); "
                         "6: the shape evidence, with the wide pseudo-anomaly; 7: 6's pick, with the look evidence; "
                         "8: 7's pick, the size in dynamics bounded or left out; 9: what the crowd correction counts; "
                         "10: rounds 6-9 judged again with the synthetic bound on five corridors; "
                         "11: 10's pick with the training videos' own crowds, judged with glide and few videos; "
                         "12: 11's candidates judged in the few-video regime too; "
                         "13: the few-video regime on pairs from both ends of the training set, with motion alone; "
                         "14: 13's pick with mirror; 15: 13's pick with pace; 16: 15 again, the banks' metric the "
                         "footage's own; 17: 13's pick with the gray-level gate on moving cells, alone, with shape "
                         "and with the region size in dynamics; 18: the gate with mirror, pace or both; "
                         "19: the gate with motion alone; 20: the gate with the region size and pace 2, alone and with look")
    args = ap.parse_args()

    from vigil.data import load_dataset
    from vigil.detector import machine_info
    from vigil.models.hybrid import Hybrid

    ds = load_dataset(args.data)
    train = [v.frames() for v in ds.train]                     # (T, H, W, 3) at the source size
    groups = [list(range(i, len(train), args.folds)) for i in range(args.folds)]   # interleaved
    print(f"{len(train)} training videos, {args.folds} folds: {groups}; machine {machine_info()}", flush=True)
    results = {}
    if args.round == 10:
        return rejudge(args, Hybrid, machine_info)
    if args.round == 12:
        return few_judge(args, Hybrid, train, groups, machine_info)
    if args.round in range(13, 21):
        return round_13(args, Hybrid, train, groups, machine_info)
    candidates = round_candidates(args.round)
    for name, over in candidates.items():
        t0 = time.perf_counter()
        res = folds_judged(Hybrid, over, args.seed, train, groups, wide=args.round >= 6, glide=args.round >= 11)
        if args.round >= 11:
            syn = synthetic_false_alarms(Hybrid, dict(seed=args.seed, **over), CORRIDORS)
            res["fa_synthetic"], res["fa_synthetic_far"] = syn["all"], syn["far"]
            res.update(few_videos(Hybrid, over, args.seed, train, groups))
        elif args.round >= 5:
            res["fa_synthetic"] = synthetic_false_alarms(Hybrid, dict(seed=args.seed, **over))["all"]
        res["seconds"] = time.perf_counter() - t0
        results[name] = res
        print(f"{name:<44} fa_unseen {100 * res['fa_unseen']:5.1f}%  fa_crowd {100 * res['fa_crowd']:5.1f}%  "
              f"auc_pooled {res['auc_pooled']:.4f} (speed {res['auc_speed']:.3f}, flip {res['auc_flip']:.3f}, "
              f"paste {res['auc_paste']:.3f}" + (f", wide {res['auc_wide']:.3f}" if "auc_wide" in res else "")
              + f"; folds {' '.join(f'{a:.3f}' for a in res['auc_pooled_per_fold'])})"
              + (f", glide {res['auc_glide']:.3f}" if "auc_glide" in res else "")
              + (f"  fa_synthetic {100 * res['fa_synthetic']:.1f}%" if "fa_synthetic" in res else "")
              + (f" (far {100 * res['fa_synthetic_far']:.1f}%)" if "fa_synthetic_far" in res else "")
              + (f"  few videos: unseen {100 * res['fa_few_unseen']:.1f}%, crowd {100 * res['fa_few_crowd']:.1f}%"
                 if "fa_few_unseen" in res else "")
              + f"  {res['seconds']:.0f} s", flush=True)
    if args.round >= 11:
        pick = rule_11(results, next(iter(candidates)))
        print(f"\nrule: false alarms <= {100 * LIMIT:.0f}% on unseen and crowded normal clips and <= "
              f"{100 * SYNTHETIC_LIMIT:.0f}% of the five corridors' far normal frames; then a candidate replaces round "
              f"10's pick when its pooled AUC is higher in every fold, or costs at most {AUC_TOLERANCE} and halves "
              f"the few-video false alarms -> {pick}")
    else:
        pick = rule(results, synthetic=args.round >= 5)
        extra = f" and <= {100 * SYNTHETIC_LIMIT:.0f}% on the synthetic corridor" if args.round >= 5 else ""
        print(f"\nrule: false alarms <= {100 * LIMIT:.0f}% on unseen and crowded normal clips{extra}, then the highest "
              f"pooled pseudo-anomaly AUC -> {pick or 'no candidate passes'}")
    if args.json:
        save_json(args.json, {"results": results, "pick": pick, "machine": machine_info()})


if __name__ == "__main__":
    main()
