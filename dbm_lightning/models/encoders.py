"""Non-causal sequence encoders: a bidirectional LSTM (``BiLSTMNet``) and a dilated temporal
convolution network (``TCNNet``, one MS-TCN stage).

Both follow the network contract of :mod:`dbm_lightning.models.factory`: ``forward(x (B, W, F))
-> logits (B, W, C)``, ``encode(x, state=None) -> (h (B, W, H), None)``, ``head(h) -> logits``,
``embed(x) -> h`` and ``embedding_dim`` (``H``). Unlike the DBM nets they see *future* frames
as well as past ones (fine for offline analysis of recorded sessions, not for closed-loop use),
so a sequence cannot be run in chunks that carry a state across: ``stateful = False`` and the
``state`` argument of :meth:`encode` is ignored. Long sessions are run as overlapping windows
instead (the lead's inference code).

Everything is batch-first and vectorised over frames (``nn.LSTM``, ``nn.Conv1d``); no Python
loop runs per frame.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dbm_lightning.models.networks import GaussianNoise, SequenceBatchNorm, SequenceNet

__all__ = ["BiLSTMNet", "TCNNet"]


def _check_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


class BiLSTMNet(SequenceNet):
    """DBM-style network with a *bidirectional* stacked LSTM.

    Gaussian noise (``noise_std``) -> FC ``fc_width`` -> tanh -> dropout -> BiLSTM
    (``lstm_width`` per direction, ``lstm_layers`` stacked, ``dropout`` between layers) ->
    dropout -> [BatchNorm if ``batchnorm``] -> FC ``fc_width`` -> ReLU -> dropout -> FC
    ``n_classes``. The embedding is the BiLSTM output ``(B, W, 2 * lstm_width)`` (forward and
    backward halves concatenated), before the dropout/BatchNorm. Each frame's prediction depends
    on the whole window, past and future.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        fc_width: int = 64,
        lstm_width: int = 64,
        lstm_layers: int = 2,
        dropout: float = 0.2,
        noise_std: float = 0.1,
        batchnorm: bool = False,
    ) -> None:
        super().__init__(n_features, n_classes)
        for name, value in (
            ("fc_width", fc_width),
            ("lstm_width", lstm_width),
            ("lstm_layers", lstm_layers),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        _check_dropout(dropout)
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
            bidirectional=True,
            dropout=dropout if lstm_layers > 1 else 0.0,
        )
        self.post = nn.Sequential(
            nn.Dropout(dropout),
            SequenceBatchNorm(2 * lstm_width) if batchnorm else nn.Identity(),
            nn.Linear(2 * lstm_width, fc_width),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(fc_width, n_classes),
        )

    @property
    def embedding_dim(self) -> int:
        """``2 * lstm_width`` (both directions of the last LSTM layer)."""
        return 2 * self.lstm.hidden_size

    def encode(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, None]:
        """``x (B, W, F)`` -> (BiLSTM output ``(B, W, 2 * lstm_width)``, ``None``).

        ``state`` is ignored: a bidirectional pass cannot be continued across chunks."""
        self._check(x)
        out, _ = self.lstm(self.pre(x))
        return out, None


class _DilatedResidual(nn.Module):
    """MS-TCN's dilated residual layer on ``(B, C, W)``: ``x + dropout(conv1x1(relu(conv_d(x))))``
    with symmetric zero padding, so that the length is kept for an odd kernel."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv_dilated = nn.Conv1d(
            channels,
            channels,
            kernel_size,
            padding=dilation * (kernel_size - 1) // 2,
            dilation=dilation,
        )
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.conv_1x1(self.relu(self.conv_dilated(x))))


class TCNNet(SequenceNet):
    """Single-stage MS-TCN (Farha & Gall, CVPR 2019): a non-causal dilated temporal
    convolution encoder.

    Gaussian noise (``noise_std``) -> 1x1 conv to ``channels`` -> ``levels`` dilated residual
    layers (dilation ``2**i``, kernel ``kernel_size``, "same" zero padding, each ``relu ->
    1x1 conv -> dropout`` plus the skip) -> embedding ``(B, W, channels)`` -> 1x1 conv to
    ``n_classes`` (an ``nn.Linear`` on the last axis, the same operation). The output length
    equals the input length for any odd ``kernel_size``; each frame sees
    :attr:`receptive_field` frames centred on it (past *and* future). Windows shorter than the
    receptive field are zero padded at both ends, so predictions near window edges see less
    context; overlapping windows help there.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        channels: int = 64,
        levels: int = 8,
        kernel_size: int = 3,
        dropout: float = 0.2,
        noise_std: float = 0.1,
    ) -> None:
        super().__init__(n_features, n_classes)
        if isinstance(kernel_size, bool) or kernel_size < 1 or kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be an odd integer >= 1, got {kernel_size}")
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        _check_dropout(dropout)
        self.channels = channels = int(channels)
        self.levels = levels = int(levels)
        self.kernel_size = kernel_size = int(kernel_size)
        self.noise = GaussianNoise(noise_std)
        self.conv_in = nn.Conv1d(n_features, channels, 1)
        self.layers = nn.Sequential(
            *(_DilatedResidual(channels, kernel_size, 2**i, dropout) for i in range(levels))
        )
        self.post = nn.Linear(channels, n_classes)

    @property
    def receptive_field(self) -> int:
        """Frames that one output frame depends on: ``1 + (kernel_size - 1) * (2**levels - 1)``
        (centred, so ``(receptive_field - 1) // 2`` on each side)."""
        return 1 + (self.kernel_size - 1) * (2**self.levels - 1)

    @property
    def embedding_dim(self) -> int:
        """``channels``."""
        return self.channels

    def encode(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, None]:
        """``x (B, W, F)`` -> (last residual layer's output ``(B, W, channels)``, ``None``).

        ``state`` is ignored (a convolution has no state to carry across chunks)."""
        self._check(x)
        h = self.layers(self.conv_in(self.noise(x).transpose(1, 2)))
        return h.transpose(1, 2), None
