"""The two model families, their parts and the LightningModule.

- :mod:`~dbm_lightning.models.networks`: ``DBMBaseline`` (the original MATLAB network),
  ``DBMModified`` (the paper's), ``GaussianNoise``, the ``SequenceNet`` contract.
- :mod:`~dbm_lightning.models.encoders`: ``BiLSTMNet`` (bidirectional LSTM) and ``TCNNet``
  (dilated temporal convolutions, one MS-TCN stage); both see future frames.
- :mod:`~dbm_lightning.models.factory`: ``build_model(name, n_features, n_classes, **kwargs)``
  and the ``MODELS`` registry (its docstring says how to add a model).
- :mod:`~dbm_lightning.models.losses`: masked, optionally class-weighted cross-entropy.
- :mod:`~dbm_lightning.models.metrics`: per-frame metrics from confusion counts (both families).
- :mod:`~dbm_lightning.models.inference`: overlapping-window averaging, ``run_model``.
- :mod:`~dbm_lightning.models.lightning`: ``DBMClassifier`` (steps, epoch metrics, TensorBoard,
  ``predict_session``, ``from_checkpoint_file``).
- :mod:`~dbm_lightning.models.classic`: the scikit-learn family (random forest, gradient
  boosting on rolling features) with the same ``predict_session`` interface.
"""

from dbm_lightning.models.encoders import BiLSTMNet, TCNNet
from dbm_lightning.models.factory import MODELS, build_model, register_model
from dbm_lightning.models.lightning import DBMClassifier
from dbm_lightning.models.losses import compute_class_weights, masked_cross_entropy
from dbm_lightning.models.metrics import balanced_accuracy_from_confusion
from dbm_lightning.models.networks import DBMBaseline, DBMModified, GaussianNoise

__all__ = [
    "MODELS",
    "BiLSTMNet",
    "DBMBaseline",
    "DBMClassifier",
    "DBMModified",
    "GaussianNoise",
    "TCNNet",
    "balanced_accuracy_from_confusion",
    "build_model",
    "compute_class_weights",
    "masked_cross_entropy",
    "register_model",
]
