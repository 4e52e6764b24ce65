"""The mouth measures of benchmarks/real_edits.py on drawn mouths (no shared data needed)."""
import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

SPEC = importlib.util.spec_from_file_location("real_edits", Path(__file__).parents[1] / "benchmarks" / "real_edits.py")
re_ = importlib.util.module_from_spec(SPEC)
sys.modules[SPEC.name] = re_
SPEC.loader.exec_module(re_)
IOD = 100.0


def ellipse(n: int, rx: float, ry: float, c=(100.0, 80.0)) -> np.ndarray:
    t = np.linspace(np.pi, 3 * np.pi, n, endpoint=False)  # from the left corner, along the upper lip first
    return np.stack([c[0] + rx * np.cos(t), c[1] + ry * np.sin(t)], -1)


def mouth(interior: int, opening: float) -> tuple[np.ndarray, np.ndarray]:
    """A grey face (luma 150), lips of luma 100 and an interior of `interior`, and its mesh."""
    mesh = np.zeros((478, 3))
    mesh[list(re_.OUTER_LIP), :2] = ellipse(len(re_.OUTER_LIP), 40, 18)
    mesh[list(re_.INNER_LIP), :2] = ellipse(len(re_.INNER_LIP), 30, opening)
    image = np.full((160, 200, 3), 150, np.uint8)
    cv2.fillPoly(image, [np.round(mesh[list(re_.OUTER_LIP), :2]).astype(np.int32)], (100, 100, 100))
    cv2.fillPoly(image, [np.round(mesh[list(re_.INNER_LIP), :2]).astype(np.int32)], (interior,) * 3)
    return image, mesh


def test_teeth_are_seen_and_measured():
    m = re_.mouth_luma(*mouth(220, 10), IOD)
    assert m.area > re_.OPEN_AREA and m.lips == pytest.approx(100, abs=8) and m.interior == pytest.approx(220, abs=15)
    assert re_.shows_teeth(m)
    shut = re_.mouth_luma(*mouth(60, 0.3), IOD)
    assert shut.area < re_.OPEN_AREA and not re_.shows_teeth(shut)
    assert re_.teeth_ratio(shut, m) == 0.0  # a mouth that stayed shut shows no teeth
    assert re_.teeth_ratio(re_.mouth_luma(*mouth(160, 10), IOD), m) == pytest.approx(160 / 220, abs=0.08)


def test_cavity_against_lips():
    dark = re_.mouth_luma(*mouth(30, 12), IOD)
    assert not re_.shows_teeth(dark) and re_.cavity_ratio(dark) == pytest.approx(0.3, abs=0.08)
    assert re_.cavity_ratio(re_.mouth_luma(*mouth(30, 0.3), IOD)) == 1.0  # not opened: no cavity


def test_progress_projects_on_the_real_change():
    n, s = np.zeros(3), np.array([1.0, 0.0, 0.0])
    assert re_.progress(np.array([0.5, 0.7, 0.0]), n, s) == pytest.approx(0.5)
    assert re_.progress(n, n, s) == 0.0
