"""One new session through a trained model (either family): prepared as in training, predicted,
post-processed, with its microstates; :func:`predict_session` gives the per-frame table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dbm_lightning.analysis.microstates import Microstates
from dbm_lightning.data import prepare_session
from dbm_lightning.models.inference import run_model
from dbm_lightning.prediction.bouts import decide
from dbm_lightning.session import Session


class MicrostatesMismatchError(ValueError):
    """Microstates of another embedding size than the model's."""


def pipeline_state_of(module: Any) -> dict:
    state = module.hparams.get("pipeline_state")
    if not state:
        raise ValueError("the model has no pipeline_state in its hparams; cannot prepare data")
    return dict(state)


# --------------------------------------------------------------------------------------------
# prediction
# --------------------------------------------------------------------------------------------


@dataclass
class SessionPrediction:
    """Per-frame arrays of one session (what the frames table holds)."""

    class_names: list[str]
    pred: np.ndarray  # (T,) int64 class index
    probs: np.ndarray  # (T, C) float32
    states: np.ndarray  # (T,) int64, -1 at invalid frames / without microstates
    valid: np.ndarray  # (T,) bool

    def columns(self) -> dict[str, Any]:
        """The frames table's columns (``label`` as a categorical of the class names)."""
        table: dict[str, Any] = {
            "frame": np.arange(self.pred.shape[0], dtype=np.int64),
            "label": pd.Categorical.from_codes(self.pred, categories=self.class_names),
        }
        for c, name in enumerate(self.class_names):
            table[f"prob_{name}"] = self.probs[:, c]
        table["microstate"] = self.states
        table["valid"] = self.valid
        return table


def predict_arrays(
    module: Any,
    session: Session,
    microstates: Microstates | None,
    smoothing: int,
    min_bout: int,
) -> SessionPrediction:
    state = pipeline_state_of(module)
    class_names = [str(c) for c in (module.hparams.get("class_names") or state["class_names"])]
    features, valid = prepare_session(session, state)
    probs, embedding = run_model(module, features, valid)
    probs, pred = decide(probs, smoothing, min_bout)
    if microstates is not None:
        if np.ndim(embedding) != 2 or np.shape(embedding)[1] != microstates.n_dims:
            raise MicrostatesMismatchError(
                f"microstates of a {microstates.n_dims}-dimensional embedding, the model's is "
                f"{np.shape(embedding)[-1]}-dimensional"
            )
        emb = np.array(embedding, dtype=np.float32)
        emb[~valid] = np.nan
        states = np.asarray(microstates.assign(emb), dtype=np.int64)
    else:
        states = np.full(features.shape[0], -1, dtype=np.int64)
    return SessionPrediction(class_names, pred, probs, states, np.asarray(valid, dtype=bool))


def predict_session(
    module: Any,
    session: Session,
    microstates: Microstates | None = None,
    smoothing: int = 0,
    min_bout: int = 1,
) -> pd.DataFrame:
    """Per-frame prediction table of one (new) session.

    Parameters
    ----------
    module
        A trained ``DBMClassifier`` (its ``pipeline_state`` prepares the session).
    session
        A raw session as read by :func:`dbm_lightning.io.load_dlc` (body parts matched by
        name; extra parts are ignored).
    microstates
        Microstates of the model (e.g. :func:`load_microstates_from_checkpoint`); without
        them the ``microstate`` column is -1.
    smoothing
        Centred moving average of the class probabilities over this many frames before the
        argmax (0 or 1: none). The ``prob_*`` columns hold the smoothed probabilities.
    min_bout
        Minimum bout length in frames (:func:`merge_short_bouts`), applied after the argmax.

    Returns
    -------
    DataFrame with one row per frame: ``frame``, ``label`` (predicted class name),
    ``prob_<class>`` for every class (rows sum to 1), ``microstate`` (int, -1 at invalid
    frames or without microstates) and ``valid`` (bool: every body part known after the
    training's likelihood masking and gap filling).

    Raises
    ------
    DataFormatError
        When the session lacks body parts the model was trained on (naming file and parts).
    """
    result = predict_arrays(module, session, microstates, smoothing, min_bout)
    table = result.columns()
    names = np.asarray(result.class_names, dtype=object)
    table["label"] = names[result.pred] if result.pred.size else np.zeros(0, dtype=object)
    return pd.DataFrame(table)
