"""DBM networks, their factory and the LightningModule.

- :mod:`~dbm_lightning.models.networks`: ``DBMBaseline`` (the original MATLAB network),
  ``DBMModified`` (the paper's), ``GaussianNoise``.
- :mod:`~dbm_lightning.models.encoders`: ``BiLSTMNet`` (bidirectional LSTM) and ``TCNNet``
  (dilated temporal convolutions, one MS-TCN stage); both see future frames.
- :mod:`~dbm_lightning.models.factory`: ``build_model(name, n_features, n_classes, **kwargs)``
  and the ``MODELS`` registry (its docstring says how to add a model).
- :mod:`~dbm_lightning.models.lightning`: ``DBMClassifier`` (loss, class weights, metrics,
  TensorBoard logging, ``predict_session``).
"""

from dbm_lightning.models.encoders import BiLSTMNet, TCNNet
from dbm_lightning.models.factory import MODELS, build_model, register_model
from dbm_lightning.models.lightning import (
    DBMClassifier,
    balanced_accuracy_from_confusion,
    compute_class_weights,
    confusion_matrix_figure,
    masked_cross_entropy,
)
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
    "confusion_matrix_figure",
    "masked_cross_entropy",
    "register_model",
]
