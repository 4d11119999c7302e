"""Build a network by name.

``build_model(name, n_features, n_classes, **kwargs)`` looks ``name`` up in :data:`MODELS` and
calls the class with the data-dependent sizes plus the config's keyword arguments (the keys of
``conf/model/<name>.yaml`` other than ``name``).

Registered networks: ``dbm_baseline`` and ``dbm_modified`` (the DBM nets, unidirectional LSTMs,
:mod:`~dbm_lightning.models.networks`), ``bilstm`` (bidirectional LSTM) and ``tcn`` (dilated
temporal convolutions, one MS-TCN stage), :mod:`~dbm_lightning.models.encoders`.

How to add a model
------------------
1. Write an ``nn.Module`` whose constructor takes ``(n_features, n_classes, **hyperparameters)``
   and that provides ``forward(x (B, W, F)) -> logits (B, W, C)``, ``embed(x) -> (B, W, H)``,
   ``encode(x, state=None) -> ((B, W, H), new_state)`` / ``head(h) -> logits``, an
   ``embedding_dim`` property (``H``) and a class attribute ``stateful: bool``: ``True`` when
   ``encode``'s state continues a sequence across chunks exactly (the unidirectional-LSTM DBM
   nets, so ``predict_session`` may run a session in chunks), ``False`` otherwise (a network
   that sees future frames, or has no state: it ignores ``state`` and returns ``None``).
   Subclassing ``networks._DBMNet`` gives ``forward``/``embed``/``encode``/``head`` for free.
2. Register it: add ``"my_model": MyModel`` to :data:`MODELS` below (or call
   :func:`register_model` from your own code).
3. Add ``conf/model/my_model.yaml`` with ``name: my_model`` and its hyperparameters; then
   ``dbm-train model=my_model``. ``DBMClassifier`` needs no change, and the config check
   learns the allowed keys from the constructor's signature.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from dbm_lightning.models.encoders import BiLSTMNet, TCNNet
from dbm_lightning.models.networks import DBMBaseline, DBMModified

__all__ = ["MODELS", "build_model", "register_model"]

MODELS: dict[str, type[nn.Module]] = {
    "dbm_baseline": DBMBaseline,
    "dbm_modified": DBMModified,
    "bilstm": BiLSTMNet,
    "tcn": TCNNet,
}


def register_model(name: str, cls: type[nn.Module]) -> None:
    """Make ``cls`` available to :func:`build_model` (and so to ``model.name`` in configs)."""
    if name in MODELS and MODELS[name] is not cls:
        raise ValueError(f"model name {name!r} is already registered to {MODELS[name].__name__}")
    MODELS[name] = cls


def build_model(name: str, n_features: int, n_classes: int, **kwargs: Any) -> nn.Module:
    """The network registered as ``name``, sized for ``n_features`` inputs and ``n_classes``."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}") from None
    try:
        return cls(n_features, n_classes, **kwargs)
    except TypeError as err:
        raise TypeError(f"model {name!r}: bad hyperparameters {sorted(kwargs)}: {err}") from err
