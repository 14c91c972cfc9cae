"""Each graded question's title as the student's notebook shows it, so checks and feedback say it too.

A test (tests/test_grading_units.py) reads every solution notebook and fails when a title here
and the notebook's heading, or the points in that heading and the tests' points, disagree.
"""

from __future__ import annotations

__all__ = ["QUESTION_TITLES", "HIDDEN_POINTS", "question_title"]

QUESTION_TITLES: dict[str, str] = {
    "q1_scale": "Question 1: scale the pixels",
    "q1_split": "Question 2: a reproducible validation split",
    "q1_show": "Question 3: look at the data",
    "q2_architecture": "Question 1: build the model",
    "q2_compile": "Question 2: compile it",
    "q2_accuracy": "Question 3: train it",
    "q3_architecture": "Question 1: build the CNN",
    "q3_compile": "Question 2: compile it",
    "q3_accuracy": "Question 3: train it",
    "q4_mlp": "Question 1: the MLP",
    "q4_cnn": "Question 2: the CNN",
    "q4_training": "Question 3: the training loop",
    "q4_evaluate": "Question 4: evaluation",
    "q4_accuracy": "Train both networks",
    "q5_misclassified": "Question 1: which images are wrong?",
    "q5_confusion": "Question 2: the confusion matrix",
    "q5_most_confused": "Question 3: the most confused pairs",
    "q5_gallery": "Question 4: a gallery of mistakes",
    "q6_budget": "Your model",
    "q6_accuracy": "Your model",
    "q6_extra_credit": "Your model",
}


def question_title(question: str) -> str:
    """ "Question 1: build the model" for "q2_architecture"; the id itself when it has no title."""
    return QUESTION_TITLES.get(question, question)


# Points each question's hidden tests carry (the tests themselves live only in autograder/), so a
# student's check() can say "1 more point from hidden tests". A test compares this with autograder/.
HIDDEN_POINTS: dict[str, float] = {
    "q1_split": 2.0,
    "q2_accuracy": 1.0,
    "q3_accuracy": 1.0,
    "q4_training": 1.0,
    "q5_misclassified": 2.0,
    "q5_confusion": 1.0,
    "q5_most_confused": 2.0,
}
