"""Prediction with a trained model of either family: per-frame tables and bouts of new sessions.

- :func:`predict_session` (:mod:`.session`) gives one row per frame: the predicted label,
  every class probability, the microstate and whether the pose was complete. New sessions go
  through :func:`dbm_lightning.data.prepare_session` with the model's ``pipeline_state``, so
  low-likelihood points, gap filling, arena scaling and standardisation are exactly those of
  training. Invalid frames (pose still incomplete after gap filling) are fed to the network
  as zeros, as in training; their row keeps the network's prediction with ``valid = False``
  and microstate -1.
- :func:`smooth_probabilities` (centred moving average) and :func:`merge_short_bouts`
  (minimum bout length) post-process the per-frame prediction; :func:`bouts_table` lists
  bouts (:mod:`.bouts`).
- :func:`predict_paths` (:mod:`.files`) predicts a file or a folder of DeepLabCut files and
  writes ``<session>.frames.csv`` and ``<session>.bouts.csv`` (or ``.parquet``) per session.
- :mod:`.guards` checks, before a session is read, the model file (a checkpoint, a
  ``model.joblib`` or a run folder), the output folder, and that the microstates were fitted
  on this very model (:func:`dbm_lightning.checkpoints.model_sha256`).

Models are read with :func:`dbm_lightning.runs.load_model`; a run's microstates come from
:mod:`dbm_lightning.analysis.run_microstates`.
"""

from dbm_lightning.prediction.bouts import (
    bouts_table,
    merge_short_bouts,
    run_lengths,
    smooth_probabilities,
)
from dbm_lightning.prediction.files import FORMATS, find_session_files, predict_paths
from dbm_lightning.prediction.session import predict_session

__all__ = [
    "FORMATS",
    "bouts_table",
    "find_session_files",
    "merge_short_bouts",
    "predict_paths",
    "predict_session",
    "run_lengths",
    "smooth_probabilities",
]
