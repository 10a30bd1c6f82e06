"""Event figures and RBDC on the real Ped2 test set with oracle inputs: figures known in advance."""

import numpy as np

from vigil.events import event_metrics, labelled_stretches
from vigil.io import write_boxes_csv, write_scores_csv
from vigil.regions import mask_boxes


def test_oracle_scores_detect_every_stretch_with_the_rules_delay(ped2):
    labels = [v.labels for v in ped2.test]
    m = event_metrics([y.astype(float) for y in labels], labels, 0.5, names=[v.name for v in ped2.test])
    starts = [first for y in labels for first, _ in labelled_stretches(y)]
    assert m.n_detected == m.n_stretches == len(starts) >= 12 and m.n_false_alarm_events == 0
    # a stretch starting at frame 1 is hot from frame 1 (median of [1], [1, 1]) and raised at 3: delay 2;
    # later ones are hot one frame late (median of [0, 0, 1] = 0) and raised at first + 3: delay 3
    assert [s["delay_frames"] for s in m.stretches] == [2 if f == 1 else 3 for f in starts]
    assert m.anomalous_frames_above_threshold == 1.0 and m.normal_frames_above_threshold == 0.0


def test_boxes_of_the_masks_themselves_give_rbdc_one(ped2, tmp_path, capsys):
    from vigil.cli import main

    boxes, scores = {}, {}
    for v in ped2.test:
        boxes[v.name] = [np.concatenate([mask_boxes(k), np.ones((len(mask_boxes(k)), 1), np.float32)], 1)
                         for k in v.masks()]
        scores[v.name] = v.labels.astype(float)
    write_boxes_csv(tmp_path / "boxes.csv", boxes)
    write_scores_csv(tmp_path / "scores.csv", scores)
    code = main(["evaluate", str(tmp_path / "scores.csv"), "--data", str(ped2.root), "--threshold", "0.5",
                 "--boxes", str(tmp_path / "boxes.csv")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "RBDC (regions at IoU >= 0.1, 0-1 false positives per frame) 1.0000" in out
    assert "false alarm events per hour of normal footage      0.0" in out
    assert "fps 10 assumed" in out


def test_boxes_that_miss_every_region_give_rbdc_zero(ped2):
    from vigil.regions import box_iou, rbdc_from_regions

    regions, missing = [], []
    for v in ped2.test[:3]:
        for k in v.masks():
            g = mask_boxes(k)
            regions.append(g)
            # one box per region, in the band of rows its regions leave free (Ped2 is 240 rows high)
            free = np.setdiff1d(np.arange(240), np.concatenate([np.arange(y0, y1) for y0, y1 in
                                                                g[:, [1, 3]].astype(int)] + [[]]).astype(int))
            y = float(free[0])
            missing.append(np.array([[x0, y, x1, y + 1, 1.0] for x0, _, x1, _ in g], np.float32).reshape(-1, 5))
            if len(g):
                assert box_iou(missing[-1], g).max() == 0
    assert rbdc_from_regions(missing, regions) == 0.0
