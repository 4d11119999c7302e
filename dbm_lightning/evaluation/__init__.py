"""Scoring predictions against human labels: frame and bout scores
(:mod:`~dbm_lightning.evaluation.scores`) and the ``dbm-evaluate`` folder evaluation
(:mod:`~dbm_lightning.evaluation.files`)."""

from dbm_lightning.evaluation.files import (
    OUTPUTS,
    Evaluation,
    align_classes,
    evaluate_predictions,
    markdown,
    write_evaluation,
)
from dbm_lightning.evaluation.scores import DEFAULT_IOU, Scores, match_bouts, score_session

__all__ = [
    "DEFAULT_IOU",
    "OUTPUTS",
    "Evaluation",
    "Scores",
    "align_classes",
    "evaluate_predictions",
    "markdown",
    "match_bouts",
    "score_session",
    "write_evaluation",
]
