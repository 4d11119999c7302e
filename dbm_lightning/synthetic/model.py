"""The synthetic box and its mice: constants, :class:`SyntheticConfig`, per-mouse traits and
the semi-Markov behaviour chain (target time shares and the bout-to-bout transition matrix).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from dbm_lightning.session import DEFAULT_FPS

GENERATOR_VERSION = 1
"""Bump when the simulator's output changes: cached datasets of older versions are ignored."""

BODYPARTS: tuple[str, ...] = ("head", "nose", "left_ear", "right_ear", "body_centre", "tail_base")
TRUE_BEHAVIOURS: tuple[str, ...] = (
    "rest",
    "locomotion",
    "grooming",
    "rearing",
    "left_port",
    "centre_port",
    "right_port",
)
PORT_BEHAVIOURS: tuple[str, ...] = ("left_port", "centre_port", "right_port")
ARENA = (0.0, 640.0, 0.0, 480.0)
"""``(x_min, x_max, y_min, y_max)`` in pixels (image coordinates, y grows downwards)."""
PORTS: dict[str, tuple[float, float]] = {
    "left_port": (160.0, 30.0),
    "centre_port": (320.0, 30.0),
    "right_port": (480.0, 30.0),
}
LANDMARKS: tuple[str, ...] = tuple(PORTS)
"""The fixed points tracked with ``SyntheticConfig(landmarks=True)``: the ports."""
FPS = DEFAULT_FPS
"""The default frame rate (:data:`dbm_lightning.session.DEFAULT_FPS`)."""
SCORER = "DLC_synthetic"

REST, LOCO, GROOM, REAR = 0, 1, 2, 3
PORT_IDX = {name: TRUE_BEHAVIOURS.index(name) for name in PORT_BEHAVIOURS}
_CENTRE = TRUE_BEHAVIOURS.index("centre_port")

# Bout durations (s): lognormal (median, sigma), clipped to [0.3, 5].
DURATION = {
    REST: (2.0, 0.5),
    LOCO: (1.3, 0.5),
    GROOM: (2.5, 0.4),
    REAR: (1.2, 0.4),
    **{i: (1.6, 0.4) for i in PORT_IDX.values()},
}
MIN_DUR, MAX_DUR = 0.3, 5.0
_APPROACH_MEAN_S = 1.8  # typical walks to and away from a port (measured on generated data)

# Time shares on day 1 (and every day for controls); centre port rises for experimental mice.
_BASE_SHARES = np.array([0.25, 0.30, 0.14, 0.10, 0.08, 0.05, 0.08])
CENTRE_START, CENTRE_END = 0.05, 0.25


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate: ``mice`` x ``days`` sessions of ``frames`` frames at ``fps``.

    ``centre_start`` / ``centre_end``: share of time at the centre port of experimental mice on
    day 1 / day 7 (controls keep ``centre_start``). ``dropout_rate``: low-likelihood bursts per
    body part per 1,000 frames. ``outlier_rate``: single-frame outlier jumps per body part per
    1,000 frames. ``jitter_px``: standard deviation of the (correlated) tracking jitter.

    ``animals``: 1 (one mouse per session, the operant box) or 2 (a pair per session, with the
    pair behaviours of :mod:`~dbm_lightning.synthetic.social`; ``mice`` is then the number of
    pairs). ``domain_shift`` in [0, 1]: how strongly every mouse (or pair) differs in body
    size, camera (scale, rotation, offset), frame rate and tracking noise (see
    :mod:`~dbm_lightning.synthetic.shift`; 0 = none, the data of generator version 1 byte for
    byte). ``swap_rate``: identity swaps of a pair's tracks per 1,000 frames (two animals only).
    ``landmarks``: also track the three ports as fixed points (:data:`LANDMARKS`, after the
    body parts, with the session's tracking jitter), as DeepLabCut users label the fixed objects
    of an arena; one animal only. ``steady``: behaviours whose share the learning curve leaves
    as on day 1 in every mouse (the centre-port rise is taken from the other behaviours alone),
    a behaviour the experiment does not change for a negative control; not ``centre_port`` or
    ``locomotion`` (the walks to the ports set its share); one animal only.
    """

    mice: int = 8
    days: int = 7
    frames: int = 3000
    seed: int = 0
    fps: float = DEFAULT_FPS
    centre_start: float = CENTRE_START
    centre_end: float = CENTRE_END
    dropout_rate: float = 2.5
    outlier_rate: float = 2.0
    jitter_px: float = 1.5
    animals: int = 1
    domain_shift: float = 0.0
    swap_rate: float = 0.0
    landmarks: bool = False
    steady: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mice < 1 or self.days < 1 or self.frames < 2:
            raise ValueError(
                f"need mice >= 1, days >= 1, frames >= 2; got mice={self.mice}, "
                f"days={self.days}, frames={self.frames}"
            )
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        for name in ("centre_start", "centre_end"):
            value = getattr(self, name)
            if not 0.0 < value < 0.8:
                raise ValueError(f"{name} must be in (0, 0.8), got {value}")
        if self.animals not in (1, 2):
            raise ValueError(f"animals must be 1 or 2, got {self.animals}")
        if not 0.0 <= self.domain_shift <= 1.0:
            raise ValueError(f"domain_shift must be in [0, 1], got {self.domain_shift}")
        if self.swap_rate < 0 or (self.swap_rate > 0 and self.animals != 2):
            raise ValueError(
                f"swap_rate must be >= 0, and 0 unless animals=2; got swap_rate={self.swap_rate}"
            )
        if self.landmarks and self.animals != 1:
            raise ValueError("landmarks are tracked for one animal per session (animals=1)")
        object.__setattr__(self, "steady", tuple(str(b) for b in self.steady))
        check_steady(self.steady)
        if self.steady and self.animals != 1:
            raise ValueError("steady behaviours are for one animal per session (animals=1)")


_LATER_FIELDS = ("animals", "domain_shift", "swap_rate", "landmarks", "steady")
"""Fields added after generator version 1: left out of :func:`config_dict` at their defaults."""


def config_dict(config: SyntheticConfig) -> dict:
    """The configuration as a dict (JSON-able), without the later fields that are at their
    defaults: a default configuration has the same ``synthetic_config.json`` and cache key as
    before they existed."""
    default = {f.name: f.default for f in fields(SyntheticConfig)}
    default["steady"] = []
    values = {k: list(v) if k == "steady" else v for k, v in asdict(config).items()}
    return {k: v for k, v in values.items() if k not in _LATER_FIELDS or v != default[k]}


@dataclass(frozen=True)
class MouseTraits:
    """Per-mouse constants: body length (px), speed scale and behaviour-preference factors."""

    body_length: float = 90.0
    speed_scale: float = 1.0
    preference: tuple[float, ...] = (1.0,) * len(TRUE_BEHAVIOURS)


def mouse_names(n: int) -> list[str]:
    """``m01``, ``m02``, ... (wider when there are 100 mice or more)."""
    width = max(2, len(str(n)))
    return [f"m{i + 1:0{width}d}" for i in range(n)]


def condition_of(mouse_idx: int, n_mice: int) -> str:
    """The first half of the mice (rounded up) are ``experimental``, the rest ``control``."""
    return "experimental" if mouse_idx < (n_mice + 1) // 2 else "control"


def session_rng(seed: int, mouse_idx: int, day: int) -> np.random.Generator:
    """The generator of one (mouse, day) session, independent of all other sessions."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(mouse_idx), int(day)]))


def mouse_traits(seed: int, mouse_idx: int, individual: int = 0) -> MouseTraits:
    """Body traits of one mouse, drawn from its own generator (same on every day).

    ``individual`` > 0 draws the traits of another animal of the same session (the partner of
    a pair) from a generator of its own."""
    key = [int(seed), int(mouse_idx), 1_000_003] + ([int(individual)] if individual else [])
    rng = np.random.default_rng(np.random.SeedSequence(key))
    pref = np.exp(rng.normal(0.0, 0.15, len(TRUE_BEHAVIOURS)))
    pref[_CENTRE] = 1.0  # the centre-port share is set by the learning curve alone
    return MouseTraits(
        body_length=float(rng.uniform(82.0, 98.0)),
        speed_scale=float(rng.uniform(0.9, 1.1)),
        preference=tuple(float(p) for p in pref),
    )


def check_steady(steady: tuple[str, ...]) -> None:
    """Refuse ``steady`` behaviours that are unknown, repeated, the centre port or locomotion."""
    for b in steady:
        if b not in TRUE_BEHAVIOURS:
            raise ValueError(
                f"steady: unknown behaviour {b!r}; the box has {list(TRUE_BEHAVIOURS)}"
            )
        if b in ("centre_port", "locomotion"):
            raise ValueError(
                f"steady: {b!r} cannot be held (the centre port is the learning curve, "
                "locomotion follows the walks to the ports)"
            )
    if len(set(steady)) != len(steady):
        raise ValueError(f"steady: a behaviour is named twice in {list(steady)}")


def behaviour_shares(
    condition: str,
    day: int,
    centre_start: float = CENTRE_START,
    centre_end: float = CENTRE_END,
    preference: tuple[float, ...] | None = None,
    steady: tuple[str, ...] = (),
) -> np.ndarray:
    """Target share of time per behaviour (sums to 1) for a mouse on ``day`` (1-based).

    Experimental mice move linearly from ``centre_start`` on day 1 to ``centre_end`` on day 7
    (and stay there); controls keep ``centre_start``. The other behaviours share the rest in
    the base proportions times the mouse's ``preference``; ``steady`` ones keep their day-1
    share, and the others share what is left.
    """
    progress = float(np.clip((day - 1) / 6.0, 0.0, 1.0)) if condition == "experimental" else 0.0
    centre = centre_start + (centre_end - centre_start) * progress
    others = _BASE_SHARES.copy()
    if preference is not None:
        others = others * np.asarray(preference, dtype=float)
    others[_CENTRE] = 0.0
    if steady:
        check_steady(steady)
        held = np.isin(np.arange(len(TRUE_BEHAVIOURS)), [TRUE_BEHAVIOURS.index(b) for b in steady])
        first = others * (1.0 - centre_start) / others.sum()  # day 1
        free = ~held
        free[_CENTRE] = False
        shares = first.copy()
        shares[free] = first[free] * (1.0 - centre - first[held].sum()) / first[free].sum()
        shares[_CENTRE] = centre
        return shares
    shares = others * (1.0 - centre) / others.sum()
    shares[_CENTRE] = centre
    return shares


def _mean_duration(behaviour: int) -> float:
    median, sigma = DURATION[behaviour]
    return float(median * np.exp(sigma**2 / 2.0))


def _stationary(p: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eig(p.T)
    v = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
    return np.abs(v) / np.abs(v).sum()


def transition_matrix(shares: np.ndarray, steady: tuple[str, ...] = ()) -> np.ndarray:
    """Bout-to-bout transition matrix (no self-transitions) whose long-run time shares are
    ``shares`` (port shares count only the time at the port; the walk there is locomotion;
    when the walks need more time than the locomotion share, the behaviours other than the
    centre port and the ``steady`` ones give it up)."""
    shares = np.asarray(shares, dtype=float)
    n = len(shares)
    cost = np.array([_mean_duration(i) for i in range(n)])  # seconds per bout
    ports = np.array([i in PORT_IDX.values() for i in range(n)])
    # Wanted bout frequencies (per second): time share / duration. Each port visit also brings
    # walks (to the port and away, labelled locomotion): when they exceed the locomotion share,
    # the other behaviours except the centre port give up time so that the centre-port share
    # stays as asked.
    held = {TRUE_BEHAVIOURS.index(b) for b in steady}
    flexible = np.array([i not in (LOCO, _CENTRE) and i not in held for i in range(n)])
    wanted = shares.copy()
    for _ in range(50):
        freq = wanted / cost
        walk = float((freq[ports] * _APPROACH_MEAN_S).sum())
        loco = max(shares[LOCO], walk + 0.03)
        room = 1.0 - loco - shares[_CENTRE]
        wanted[flexible] = shares[flexible] * room / shares[flexible].sum()
    freq = wanted / cost
    freq[LOCO] = (loco - walk) / cost[LOCO]
    target = freq / freq.sum()
    # P[i, j] ~ q_j (j != i); adjust q so that the chain's stationary law equals target.
    q = target.copy()
    for _ in range(100):
        p = np.tile(q, (n, 1))
        np.fill_diagonal(p, 0.0)
        p /= p.sum(axis=1, keepdims=True)
        pi = _stationary(p)
        q *= target / pi
        q /= q.sum()
    p = np.tile(q, (n, 1))
    np.fill_diagonal(p, 0.0)
    return p / p.sum(axis=1, keepdims=True)
