from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from aestetik._clustering import refine_labels
from aestetik._neighbors import knn_indices, majority_vote, neighbour_mean


def test_knn_stays_in_its_sample_and_leaves_the_point_out():
    rng = np.random.default_rng(0)
    xy = rng.random((400, 2))
    samples = rng.integers(0, 3, 400)
    idx = knn_indices(xy, 6, samples=samples)
    assert idx.shape == (400, 6)
    assert not (idx == np.arange(400)[:, None]).any()
    assert (samples[idx] == samples[:, None]).all()
    # nearest first, and truly the nearest of the sample
    i = 17
    same = np.flatnonzero((samples == samples[i]) & (np.arange(400) != i))
    d = np.linalg.norm(xy[same] - xy[i], axis=1)
    np.testing.assert_array_equal(idx[i], same[np.argsort(d)[:6]])


def test_knn_pads_small_samples():
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    idx = knn_indices(xy, 3, samples=np.array([0, 0, 1]))
    assert idx[0].tolist() == [1, 1, 1] and idx[1].tolist() == [0, 0, 0]
    assert idx[2].tolist() == [2, 2, 2]  # alone in its sample: itself


def test_neighbour_mean_includes_the_point():
    x = np.arange(8, dtype=np.float32).reshape(4, 2)
    nbrs = np.array([[1], [0], [3], [2]])
    np.testing.assert_allclose(neighbour_mean(x, nbrs), [[1, 2], [1, 2], [5, 6], [5, 6]])


def test_vote_and_refinement_match_a_knn_classifier():
    rng = np.random.default_rng(1)
    xy, labels, proba = rng.random((600, 2)), rng.integers(0, 5, 600), rng.random(600)
    train = proba > 0.9
    expected = KNeighborsClassifier(10, algorithm="brute").fit(xy[train], labels[train]).predict(xy)
    nbrs = knn_indices(xy[train], 10, query=xy)
    np.testing.assert_array_equal(majority_vote(labels[train], nbrs, 5), expected)
    np.testing.assert_array_equal(refine_labels(labels, xy, proba=proba), expected)


def test_vote_ties_go_to_the_smaller_label():
    assert majority_vote(np.array([2, 1, 1, 2]), np.array([[0, 1], [2, 3], [0, 3]]), 3).tolist() == [1, 1, 2]
