"""The Deep Behavior Mapping networks: the original (``DBMBaseline``) and the paper's modified one.

Both map a batch of feature windows ``x (B, W, F)`` to per-frame class logits ``(B, W, C)``
(sequence-to-sequence: one prediction per frame, as MATLAB's ``OutputMode="sequence"``).
Fully connected layers act on each frame independently; the LSTMs are batch-first.

``embed(x) -> (B, W, H)`` is the per-frame output of the (last) LSTM layer, taken *before* the
Gaussian noise / dropout / BatchNorm that follow it: the activations that ``dbmGetModelOutputs.m``
reads and clusters into microstates. Call it in eval mode (``net.eval()``) for deterministic
embeddings: in training mode the input noise (and, in ``DBMModified``, the dropout after the first
fully connected layer) still act on the layers before the LSTM.

For long sessions, :meth:`_DBMNet.encode` accepts and returns the LSTM state ``(h, c)`` so that
a sequence can be run in chunks with identical results (see
``DBMClassifier.predict_session``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["DBMBaseline", "DBMModified", "GaussianNoise", "LSTMState", "SequenceNet"]

LSTMState = tuple[torch.Tensor, torch.Tensor]


class GaussianNoise(nn.Module):
    """Additive zero-mean Gaussian noise of standard deviation ``std``, active only in training
    mode (MATLAB's ``gaussianNoiseLayer``); the identity in eval mode or when ``std == 0``."""

    def __init__(self, std: float = 0.1) -> None:
        super().__init__()
        if std < 0:
            raise ValueError(f"noise std must be >= 0, got {std}")
        self.std = float(std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.std > 0:
            return x + torch.randn_like(x) * self.std
        return x

    def extra_repr(self) -> str:
        return f"std={self.std}"


class SequenceBatchNorm(nn.Module):
    """``BatchNorm1d`` over the feature axis of a batch-first sequence ``(B, W, H)``.

    ``nn.BatchNorm1d`` expects channels on axis 1, so the input is transposed to ``(B, H, W)``
    and back; statistics are taken over batch and time (B * W values per feature), so a batch
    of a single window is fine in training mode as long as ``W > 1``.
    """

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x.transpose(1, 2)).transpose(1, 2)


class SequenceNet(nn.Module):
    """The network contract every encoder follows (see :mod:`dbm_lightning.models.factory`):
    ``encode(x, state) -> (h, state)`` (input -> per-frame embedding), ``head(h) -> logits``
    (``post``), ``forward`` and ``embed``, ``embedding_dim`` and the class attribute
    ``stateful`` (whether ``encode``'s state continues a sequence across chunks exactly)."""

    stateful: bool = False
    post: nn.Module

    def __init__(self, n_features: int, n_classes: int) -> None:
        super().__init__()
        if n_features < 1 or n_classes < 1:
            raise ValueError(
                f"need n_features >= 1 and n_classes >= 1, got {n_features}, {n_classes}"
            )
        self.n_features = int(n_features)
        self.n_classes = int(n_classes)

    @property
    def embedding_dim(self) -> int:  # pragma: no cover - every encoder overrides it
        """``H``, the width of :meth:`embed`'s output."""
        raise NotImplementedError

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.n_features:
            raise ValueError(
                f"{type(self).__name__} expects x of shape (batch, window, {self.n_features}), "
                f"got {tuple(x.shape)}"
            )

    def encode(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """``x (B, W, F)`` -> (per-frame embedding ``(B, W, H)``, new state)."""
        raise NotImplementedError  # pragma: no cover - every encoder overrides it

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Embedding ``(B, W, H)`` -> logits ``(B, W, C)``."""
        return self.post(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame logits ``(B, W, C)`` of ``x (B, W, F)``."""
        return self.head(self.encode(x)[0])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame embedding ``(B, W, H)`` (call in eval mode for deterministic values)."""
        return self.encode(x)[0]


class _DBMNet(SequenceNet):
    """The DBM nets: ``pre`` -> unidirectional ``lstm`` -> ``post``. The embedding is the
    (last) LSTM layer's output, before noise/dropout/BN; ``encode`` carries the LSTM state."""

    stateful = True
    pre: nn.Module
    lstm: nn.LSTM

    @property
    def embedding_dim(self) -> int:
        """``H``, the width of :meth:`embed`'s output (the last LSTM layer's hidden size)."""
        return self.lstm.hidden_size

    def encode(
        self, x: torch.Tensor, state: LSTMState | None = None
    ) -> tuple[torch.Tensor, LSTMState]:
        """``x (B, W, F)`` -> (LSTM output ``(B, W, H)``, final LSTM state ``(h, c)``).

        ``state`` continues a sequence from a previous chunk (``None`` = zero state)."""
        self._check(x)
        out, new_state = self.lstm(self.pre(x), state)
        return out, new_state


class DBMBaseline(_DBMNet):
    """The original DBM network (``dbmTrainModel.m``).

    Gaussian noise (``noise_std``) -> FC ``fc_width`` -> tanh -> LSTM ``lstm_width`` (sequence
    output) -> Gaussian noise (``noise_std``) -> FC ``fc_width`` -> ReLU -> FC ``fc_width`` ->
    ReLU -> FC ``n_classes`` (logits; the softmax lives in the loss).
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        fc_width: int = 10,
        lstm_width: int = 10,
        noise_std: float = 0.1,
    ) -> None:
        super().__init__(n_features, n_classes)
        self.pre = nn.Sequential(
            GaussianNoise(noise_std),
            nn.Linear(n_features, fc_width),
            nn.Tanh(),
        )
        self.lstm = nn.LSTM(fc_width, lstm_width, num_layers=1, batch_first=True)
        self.post = nn.Sequential(
            GaussianNoise(noise_std),
            nn.Linear(lstm_width, fc_width),
            nn.ReLU(),
            nn.Linear(fc_width, fc_width),
            nn.ReLU(),
            nn.Linear(fc_width, n_classes),
        )


class DBMModified(_DBMNet):
    """The paper's modified DBM (section 5.1, Fig. 7): stacked LSTMs, dropout after every fully
    connected layer, dropout + BatchNorm after the LSTM layers.

    Gaussian noise -> FC ``fc_width`` -> tanh -> dropout -> LSTM ``lstm_width`` x ``lstm_layers``
    (stacked, sequence output) -> Gaussian noise -> dropout -> BatchNorm -> [FC ``fc_width`` ->
    ReLU -> dropout] x 2 -> FC ``n_classes``. ``dropout`` is the drop probability of every
    dropout layer; ``lstm_dropout`` (default 0, as the paper names none) is PyTorch's dropout
    between stacked LSTM layers; ``batchnorm=False`` drops the BatchNorm (for ablations).
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        fc_width: int = 10,
        lstm_width: int = 10,
        lstm_layers: int = 2,
        dropout: float = 0.2,
        noise_std: float = 0.1,
        lstm_dropout: float = 0.0,
        batchnorm: bool = True,
    ) -> None:
        super().__init__(n_features, n_classes)
        if lstm_layers < 1:
            raise ValueError(f"lstm_layers must be >= 1, got {lstm_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.pre = nn.Sequential(
            GaussianNoise(noise_std),
            nn.Linear(n_features, fc_width),
            nn.Tanh(),
            nn.Dropout(dropout),
        )
        self.lstm = nn.LSTM(
            fc_width,
            lstm_width,
            num_layers=lstm_layers,
            batch_first=True,
            dropout=lstm_dropout if lstm_layers > 1 else 0.0,
        )
        self.post = nn.Sequential(
            GaussianNoise(noise_std),
            nn.Dropout(dropout),
            SequenceBatchNorm(lstm_width) if batchnorm else nn.Identity(),
            nn.Linear(lstm_width, fc_width),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(fc_width, fc_width),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(fc_width, n_classes),
        )
