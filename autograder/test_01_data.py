"""Assignment 1, data: the visible tests shipped with the kit, plus hidden tests.

Run by `mnist-kit grade --assignment 01-data ...`; by hand on a kept artifact folder with
`pytest autograder/test_01_data.py --submission DIR`.
"""

import numpy as np

from mnist_kit.grading.declare import Call, expect, graded
from mnist_kit.grading.suites.data import *  # noqa: F403 - the visible tests and their probes
from mnist_kit.grading.suites.data import _IMAGES, _LABELS, expect_split, image_ids, unpack_split

OTHER_FRACTION = Call(
    "split_train_val",
    (_IMAGES, _LABELS),
    {"val_fraction": 0.25},
    label="split_train_val(images, labels, val_fraction=0.25)",
)
OTHER_SEED = Call(
    "split_train_val",
    (_IMAGES, _LABELS),
    {"seed": 7},
    label="split_train_val(images, labels, seed=7)",
)


@graded("q1_split", 1, hidden=True, about="the split with a different validation fraction")
def test_split_other_fraction(submission):
    """Does val_fraction=0.25 give a complete 75/25 split?"""
    result = submission.call(OTHER_FRACTION)
    for what in ("sizes", "complete", "labels"):
        expect_split(result, _IMAGES, _LABELS, 0.25, OTHER_FRACTION.label, what)


@graded("q1_split", 1, hidden=True, about="whether a different seed gives a different split")
def test_split_other_seed(submission):
    """Does another seed give another split (the seed is really used)?"""
    with_42 = unpack_split(submission.call(SPLIT), SPLIT.label)  # noqa: F405
    with_7 = unpack_split(submission.call(OTHER_SEED), OTHER_SEED.label)
    expect(
        not np.array_equal(image_ids(with_42[2]), image_ids(with_7[2])),
        "seed=7 gave the same split as seed=42; pass the seed argument to np.random.default_rng(seed)",
    )
