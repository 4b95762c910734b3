from __future__ import annotations

import numpy as np

from bot.nlu.calibration import choose_oos_threshold, fit_temperature, softmax


def test_temperature_undoes_overconfident_logits() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(2000, 5))
    labels = np.array([rng.choice(5, p=softmax(row)) for row in true_logits])
    t = fit_temperature(true_logits * 3.0, labels)
    assert 2.4 < t < 3.6


def test_threshold_with_an_explicit_out_of_scope_class() -> None:
    # Two in-scope classes (0, 1) and out-of-scope (2); in-scope predictions are confident.
    probs = np.array([[0.9, 0.05, 0.05], [0.85, 0.1, 0.05], [0.1, 0.8, 0.1],
                      [0.5, 0.45, 0.05], [0.4, 0.35, 0.25], [0.1, 0.1, 0.8]])
    labels = np.array([0, 0, 1, 2, 2, 2])
    t = choose_oos_threshold(probs, labels, oos_label=2)
    assert 0.5 < t <= 0.8


def test_threshold_without_an_out_of_scope_class_keeps_most_correct_answers() -> None:
    conf = np.linspace(0.5, 1.0, 100)
    probs = np.stack([conf, 1 - conf], axis=1)
    t = choose_oos_threshold(probs, np.zeros(100, dtype=int), oos_label=None, keep=0.9)
    assert abs(t - 0.55) < 0.01
