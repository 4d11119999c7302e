"""A synthetic operant box: mice whose true behaviour is known, tracked as DeepLabCut would.

The simulator draws, for every (mouse, day), a semi-Markov sequence of behaviour bouts
(:data:`TRUE_BEHAVIOURS`), moves a six-part skeleton (:data:`BODYPARTS`) through the
640 x 480 px arena with kinematics that differ per behaviour, and adds DeepLabCut-like
tracking noise (temporally correlated jitter, confidence values, low-confidence dropouts
whose coordinates are garbage, single-frame outliers).

- ``rest``: the animal is still; only tracking jitter moves the points.
- ``locomotion``: the body centre follows a smooth (cubic Bezier) path at 150-400 px/s with
  the body axis along the heading.
- ``grooming``: the body is still; head, nose and ears move quickly in small circles.
- ``rearing``: the body centre is still; in top view the head comes towards the body
  (head-to-tail distance shortens) and the ears come close together.
- ``left_port`` / ``centre_port`` / ``right_port``: the head is held within ~35 px of the port
  on the top wall while the nose pokes; the walk there is a ``locomotion`` bout before it.

Experimental mice (the first half, ``m01..``) learn: their share of time at the centre
(reward) port rises from ~5 % on day 1 to ~25 % on day 7; control mice stay at ~5 %.

Every (mouse, day) session has its own generator seeded from ``(seed, mouse, day)`` and every
mouse its own body traits seeded from ``(seed, mouse)``, so a session does not depend on how
many mice or days are generated, and files are identical byte for byte for a given seed.

:func:`write_dataset` writes DeepLabCut CSV files, true-label files and a manifest;
:func:`ensure_dataset` does so once into a cache folder keyed on the configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from dbm_lightning.session import Session

__all__ = [
    "ARENA",
    "BODYPARTS",
    "FPS",
    "GENERATOR_VERSION",
    "PORTS",
    "SCORER",
    "TRUE_BEHAVIOURS",
    "MouseTraits",
    "SyntheticConfig",
    "behaviour_shares",
    "condition_of",
    "config_key",
    "default_cache_root",
    "ensure_dataset",
    "generate_sessions",
    "mouse_names",
    "mouse_traits",
    "session_rng",
    "simulate_session",
    "transition_matrix",
    "write_dataset",
    "write_dlc_csv",
]

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
FPS = 30.0
SCORER = "DLC_synthetic"
CACHE_ENV = "DBM_LIGHTNING_CACHE"

_REST, _LOCO, _GROOM, _REAR = 0, 1, 2, 3
_PORT_IDX = {name: TRUE_BEHAVIOURS.index(name) for name in PORT_BEHAVIOURS}
_CENTRE = TRUE_BEHAVIOURS.index("centre_port")

# Body-part offsets along the body axis, as fractions of the body length (body centre = 0).
_HEAD, _NOSE, _EAR, _EAR_SPAN, _TAIL = 0.40, 0.60, 0.29, 0.09, 0.45
_MARGIN = 62.0  # body centre stays this far from the walls, so every part stays inside
_BODY_BOX = (ARENA[0] + _MARGIN, ARENA[1] - _MARGIN, ARENA[2] + _MARGIN, ARENA[3] - _MARGIN)

# Bout durations (s): lognormal (median, sigma), clipped to [0.3, 5].
_DURATION = {
    _REST: (2.0, 0.5),
    _LOCO: (1.3, 0.5),
    _GROOM: (2.5, 0.4),
    _REAR: (1.2, 0.4),
    **{i: (1.6, 0.4) for i in _PORT_IDX.values()},
}
_MIN_DUR, _MAX_DUR = 0.3, 5.0
_APPROACH_MEAN_S = 1.8  # typical walks to and away from a port (measured on generated data)

# Time shares on day 1 (and every day for controls); centre port rises for experimental mice.
_BASE_SHARES = np.array([0.25, 0.30, 0.14, 0.10, 0.08, 0.05, 0.08])
_CENTRE_START, _CENTRE_END = 0.05, 0.25


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate: ``mice`` x ``days`` sessions of ``frames`` frames at ``fps``.

    ``centre_start`` / ``centre_end``: share of time at the centre port of experimental mice on
    day 1 / day 7 (controls keep ``centre_start``). ``dropout_rate``: low-likelihood bursts per
    body part per 1,000 frames. ``outlier_rate``: single-frame outlier jumps per body part per
    1,000 frames. ``jitter_px``: standard deviation of the (correlated) tracking jitter.
    """

    mice: int = 8
    days: int = 7
    frames: int = 3000
    seed: int = 0
    fps: float = FPS
    centre_start: float = _CENTRE_START
    centre_end: float = _CENTRE_END
    dropout_rate: float = 2.5
    outlier_rate: float = 2.0
    jitter_px: float = 1.5

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


def mouse_traits(seed: int, mouse_idx: int) -> MouseTraits:
    """Body traits of one mouse, drawn from its own generator (same on every day)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(mouse_idx), 1_000_003]))
    pref = np.exp(rng.normal(0.0, 0.15, len(TRUE_BEHAVIOURS)))
    pref[_CENTRE] = 1.0  # the centre-port share is set by the learning curve alone
    return MouseTraits(
        body_length=float(rng.uniform(82.0, 98.0)),
        speed_scale=float(rng.uniform(0.9, 1.1)),
        preference=tuple(float(p) for p in pref),
    )


def behaviour_shares(
    condition: str,
    day: int,
    centre_start: float = _CENTRE_START,
    centre_end: float = _CENTRE_END,
    preference: tuple[float, ...] | None = None,
) -> np.ndarray:
    """Target share of time per behaviour (sums to 1) for a mouse on ``day`` (1-based).

    Experimental mice move linearly from ``centre_start`` on day 1 to ``centre_end`` on day 7
    (and stay there); controls keep ``centre_start``. The other behaviours share the rest in
    the base proportions times the mouse's ``preference``.
    """
    progress = float(np.clip((day - 1) / 6.0, 0.0, 1.0)) if condition == "experimental" else 0.0
    centre = centre_start + (centre_end - centre_start) * progress
    others = _BASE_SHARES.copy()
    if preference is not None:
        others = others * np.asarray(preference, dtype=float)
    others[_CENTRE] = 0.0
    shares = others * (1.0 - centre) / others.sum()
    shares[_CENTRE] = centre
    return shares


def _mean_duration(behaviour: int) -> float:
    median, sigma = _DURATION[behaviour]
    return float(median * np.exp(sigma**2 / 2.0))


def _stationary(p: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eig(p.T)
    v = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
    return np.abs(v) / np.abs(v).sum()


def transition_matrix(shares: np.ndarray) -> np.ndarray:
    """Bout-to-bout transition matrix (no self-transitions) whose long-run time shares are
    ``shares`` (port shares count only the time at the port; the walk there is locomotion)."""
    shares = np.asarray(shares, dtype=float)
    n = len(shares)
    cost = np.array([_mean_duration(i) for i in range(n)])  # seconds per bout
    ports = np.array([i in _PORT_IDX.values() for i in range(n)])
    # Wanted bout frequencies (per second): time share / duration. Each port visit also brings
    # walks (to the port and away, labelled locomotion): when they exceed the locomotion share,
    # the other behaviours except the centre port give up time so that the centre-port share
    # stays as asked.
    flexible = np.array([i not in (_LOCO, _CENTRE) for i in range(n)])
    wanted = shares.copy()
    for _ in range(50):
        freq = wanted / cost
        walk = float((freq[ports] * _APPROACH_MEAN_S).sum())
        loco = max(shares[_LOCO], walk + 0.03)
        room = 1.0 - loco - shares[_CENTRE]
        wanted[flexible] = shares[flexible] * room / shares[flexible].sum()
    freq = wanted / cost
    freq[_LOCO] = (loco - walk) / cost[_LOCO]
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


# --------------------------------------------------------------------------------------------
# Bouts: each fills a slice of per-frame arrays of body-centre position, heading and posture.


@dataclass
class _Track:
    """Per-frame latent state of one session (filled bout by bout)."""

    centre: np.ndarray  # (T, 2)
    heading: np.ndarray  # (T,)
    head_scale: np.ndarray  # (T,) head/nose/ears distance from the body centre, x normal
    ear_scale: np.ndarray  # (T,) ear span, x normal
    tail_scale: np.ndarray  # (T,)
    head_extra: np.ndarray  # (T, 2) world-frame offset added to head, nose and ears
    nose_extra: np.ndarray  # (T, 2) extra offset of the nose only
    labels: np.ndarray  # (T,)

    @classmethod
    def empty(cls, n: int) -> _Track:
        return cls(
            centre=np.zeros((n, 2)),
            heading=np.zeros(n),
            head_scale=np.ones(n),
            ear_scale=np.ones(n),
            tail_scale=np.ones(n),
            head_extra=np.zeros((n, 2)),
            nose_extra=np.zeros((n, 2)),
            labels=np.zeros(n, dtype=np.int64),
        )


def _ramp(n: int, fps: float, rise_s: float = 0.25) -> np.ndarray:
    """Smooth 0 -> 1 -> 0 envelope over ``n`` frames (rise/fall of ``rise_s`` seconds)."""
    k = max(1, min(int(round(rise_s * fps)), n // 3))
    t = np.arange(n, dtype=float)
    up = np.clip((t + 1) / k, 0.0, 1.0)
    down = np.clip((n - t) / k, 0.0, 1.0)
    env = np.minimum(up, down)
    return env * env * (3.0 - 2.0 * env)


def _duration_frames(behaviour: int, rng: np.random.Generator, fps: float) -> int:
    median, sigma = _DURATION[behaviour]
    seconds = float(np.clip(median * np.exp(sigma * rng.standard_normal()), _MIN_DUR, _MAX_DUR))
    return max(2, int(round(seconds * fps)))


def _bezier_path(
    p0: np.ndarray,
    h0: float,
    p3: np.ndarray,
    h1: float,
    n: int,
    ease: float = 0.35,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` positions (after ``p0``, ending at ``p3``) and headings along a cubic Bezier that
    leaves ``p0`` along heading ``h0`` and reaches ``p3`` along ``h1``; speed eased at the ends."""
    dist = float(np.hypot(*(p3 - p0)))
    k = 0.35 * dist
    p1 = p0 + k * np.array([np.cos(h0), np.sin(h0)])
    p2 = p3 - k * np.array([np.cos(h1), np.sin(h1)])
    u = np.linspace(0.0, 1.0, max(64, 2 * n))[:, None]
    curve = (1 - u) ** 3 * p0 + 3 * (1 - u) ** 2 * u * p1 + 3 * (1 - u) * u**2 * p2 + u**3 * p3
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(curve, axis=0).T))])
    tau = np.arange(1, n + 1) / n
    s = (tau - ease * np.sin(2 * np.pi * tau) / (2 * np.pi)) * arc[-1]
    uu = np.interp(s, arc, u[:, 0])[:, None]
    pos = (1 - uu) ** 3 * p0 + 3 * (1 - uu) ** 2 * uu * p1 + 3 * (1 - uu) * uu**2 * p2 + uu**3 * p3
    deriv = 3 * (1 - uu) ** 2 * (p1 - p0) + 6 * (1 - uu) * uu * (p2 - p1) + 3 * uu**2 * (p3 - p2)
    heading = np.arctan2(deriv[:, 1], deriv[:, 0])
    still = np.hypot(deriv[:, 0], deriv[:, 1]) < 1e-9
    heading[still] = h1
    return pos, np.unwrap(np.concatenate([[h0], heading]))[1:]


def _inside(p: np.ndarray) -> np.ndarray:
    x0, x1, y0, y1 = _BODY_BOX
    return (p[..., 0] >= x0) & (p[..., 0] <= x1) & (p[..., 1] >= y0) & (p[..., 1] <= y1)


def _walk(
    pos: np.ndarray,
    heading: float,
    target: np.ndarray | None,
    end_heading: float | None,
    rng: np.random.Generator,
    traits: MouseTraits,
    fps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """A locomotion bout: to ``target`` (a port approach) or to a random reachable point."""
    speed = float(np.clip(rng.uniform(190.0, 330.0) * traits.speed_scale, 170.0, 380.0))
    if target is None:
        seconds = _duration_frames(_LOCO, rng, fps) / fps
        length = speed * seconds
        angles = heading + rng.normal(0.0, 1.0, 16)
        cand = pos + length * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        ok = np.flatnonzero(_inside(cand))
        if ok.size:
            target = cand[ok[0]]
        else:  # hemmed in by walls: head for a random point of the arena
            x0, x1, y0, y1 = _BODY_BOX
            target = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        direction = np.arctan2(*(target - pos)[::-1])
        end_heading = direction + rng.normal(0.0, 0.3)
    dist = float(np.hypot(*(target - pos)))
    n = max(3, int(round(dist / speed * fps)))
    # Turn on the spot first (about 6 rad/s) when the target lies behind the animal.
    direction = float(np.arctan2(*(target - pos)[::-1]))
    turn = (direction - heading + np.pi) % (2 * np.pi) - np.pi
    n_turn = int(np.ceil((abs(turn) - np.pi / 3) / 6.0 * fps)) if abs(turn) > np.pi / 2 else 0
    start_heading = heading + turn - np.sign(turn) * np.pi / 3 if n_turn else heading
    centre, head = _bezier_path(pos, start_heading, target, float(end_heading), n)
    if n_turn:
        spin = heading + (start_heading - heading) * np.arange(1, n_turn + 1) / n_turn
        centre = np.concatenate([np.tile(pos, (n_turn, 1)), centre])
        head = np.concatenate([spin, head])
    x0, x1, y0, y1 = _BODY_BOX
    centre[:, 0] = np.clip(centre[:, 0], x0, x1)
    centre[:, 1] = np.clip(centre[:, 1], y0, y1)
    return centre, head


def _port_pose(
    port: str, rng: np.random.Generator, traits: MouseTraits
) -> tuple[np.ndarray, float, np.ndarray]:
    """Where the body centre stands (and its heading) to hold the head near ``port``."""
    px, py = PORTS[port]
    head_target = np.array([px + rng.uniform(-14.0, 14.0), py + rng.uniform(12.0, 28.0)])
    heading = -np.pi / 2 + rng.normal(0.0, 0.15)
    axis = np.array([np.cos(heading), np.sin(heading)])
    centre = head_target - _HEAD * traits.body_length * axis
    return centre, heading, head_target


def _fill_still(
    track: _Track,
    sl: slice,
    behaviour: int,
    pos: np.ndarray,
    heading: float,
    rng: np.random.Generator,
    fps: float,
) -> None:
    """Bouts in which the body centre stays put: rest, grooming, rearing, port holds."""
    n = sl.stop - sl.start
    t = np.arange(n) / fps
    env = _ramp(n, fps)
    track.centre[sl] = pos
    track.heading[sl] = heading
    axis = np.array([np.cos(heading), np.sin(heading)])
    if behaviour == _GROOM:
        r = rng.uniform(6.0, 10.0)
        w = 2 * np.pi * rng.uniform(2.5, 4.0)
        ph = rng.uniform(0, 2 * np.pi)
        circle = np.stack([np.cos(w * t + ph), np.sin(w * t + ph)], axis=1)
        track.head_extra[sl] = (env * r)[:, None] * circle
        r2 = rng.uniform(3.0, 6.0)
        w2 = 2 * np.pi * rng.uniform(4.0, 6.0)
        circle2 = np.stack([np.cos(w2 * t), -np.sin(w2 * t)], axis=1)
        track.nose_extra[sl] = (env * r2)[:, None] * circle2
        track.head_scale[sl] = 1.0 - 0.2 * env
    elif behaviour == _REAR:
        track.head_scale[sl] = 1.0 - 0.45 * env
        track.ear_scale[sl] = 1.0 - 0.5 * env
        track.tail_scale[sl] = 1.0 - 0.25 * env
        w = 2 * np.pi * rng.uniform(1.0, 2.0)
        wobble = np.stack([np.sin(w * t), np.cos(1.3 * w * t)], axis=1)
        track.head_extra[sl] = (env * 2.5)[:, None] * wobble
    elif behaviour in _PORT_IDX.values():
        w = 2 * np.pi * rng.uniform(3.0, 5.0)
        poke = rng.uniform(3.0, 8.0) * 0.5 * (1.0 - np.cos(w * t))
        track.nose_extra[sl] = (env * poke)[:, None] * axis
        sway = rng.normal(0.0, 1.0, 2)
        track.head_extra[sl] = (env * np.sin(2 * np.pi * 0.7 * t))[:, None] * sway
    track.labels[sl] = behaviour


def _simulate_track(
    condition: str,
    day: int,
    frames: int,
    rng: np.random.Generator,
    traits: MouseTraits,
    fps: float,
    centre_start: float,
    centre_end: float,
) -> _Track:
    shares = behaviour_shares(condition, day, centre_start, centre_end, traits.preference)
    trans = np.cumsum(transition_matrix(shares), axis=1)
    buffer = frames + int(12 * fps)
    track = _Track.empty(buffer)
    x0, x1, y0, y1 = _BODY_BOX
    pos = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
    heading = float(rng.uniform(-np.pi, np.pi))
    t = 0
    behaviour = _REST
    while t < frames:
        if behaviour == _LOCO:
            centre, head = _walk(pos, heading, None, None, rng, traits, fps)
            n = len(centre)
            sl = slice(t, min(t + n, buffer))
            m = sl.stop - sl.start
            track.centre[sl], track.heading[sl], track.labels[sl] = centre[:m], head[:m], _LOCO
            pos, heading = centre[m - 1], float(head[m - 1])
            t = sl.stop
        else:
            name = TRUE_BEHAVIOURS[behaviour]
            if name in PORTS:
                stand, stand_heading, _ = _port_pose(name, rng, traits)
                if np.hypot(*(stand - pos)) > 15.0:
                    centre, head = _walk(pos, heading, stand, stand_heading, rng, traits, fps)
                    sl = slice(t, min(t + len(centre), buffer))
                    m = sl.stop - sl.start
                    track.centre[sl], track.heading[sl] = centre[:m], head[:m]
                    track.labels[sl] = _LOCO
                    t = sl.stop
                pos, heading = stand, stand_heading
                if t >= frames:
                    break
            n = _duration_frames(behaviour, rng, fps)
            sl = slice(t, min(t + n, buffer))
            _fill_still(track, sl, behaviour, pos, heading, rng, fps)
            t = sl.stop
            if name in PORTS and t < frames:  # walk away from the wall after a port visit
                away = np.pi / 2 + rng.normal(0.0, 0.5)
                dist = rng.uniform(110.0, 200.0)
                x0, x1, y0, y1 = _BODY_BOX
                goal = pos + dist * np.array([np.cos(away), np.sin(away)])
                goal = np.clip(goal, [x0, y0], [x1, y1])
                centre, head = _walk(pos, heading, goal, away, rng, traits, fps)
                sl = slice(t, min(t + len(centre), buffer))
                m = sl.stop - sl.start
                track.centre[sl], track.heading[sl] = centre[:m], head[:m]
                track.labels[sl] = _LOCO
                pos, heading = centre[m - 1], float(head[m - 1])
                t = sl.stop
        behaviour = int(np.searchsorted(trans[behaviour], rng.random(), side="right"))
        behaviour = min(behaviour, len(TRUE_BEHAVIOURS) - 1)
    for name in ("centre", "heading", "head_scale", "ear_scale", "tail_scale"):
        setattr(track, name, getattr(track, name)[:frames])
    track.head_extra = track.head_extra[:frames]
    track.nose_extra = track.nose_extra[:frames]
    track.labels = track.labels[:frames]
    return track


def _skeleton(track: _Track, body_length: float) -> np.ndarray:
    """``(T, 6, 2)`` true body-part positions from the latent track."""
    axis = np.stack([np.cos(track.heading), np.sin(track.heading)], axis=1)
    perp = np.stack([-axis[:, 1], axis[:, 0]], axis=1)
    c = track.centre
    hs = (track.head_scale * body_length)[:, None]
    head = c + _HEAD * hs * axis + track.head_extra
    nose = c + _NOSE * hs * axis + track.head_extra + track.nose_extra
    ear_base = c + _EAR * hs * axis + 0.8 * track.head_extra
    span = (_EAR_SPAN * body_length * track.ear_scale)[:, None] * perp
    # image y grows downwards, so the animal's left is -perp (heading up: left is smaller x)
    left_ear = ear_base - span
    right_ear = ear_base + span
    tail = c - (_TAIL * body_length * track.tail_scale)[:, None] * axis
    return np.stack([head, nose, left_ear, right_ear, c, tail], axis=1)


def _tracking_noise(
    true_pose: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    fps: float,
    dropout_rate: float,
    outlier_rate: float,
    jitter_px: float,
) -> tuple[np.ndarray, np.ndarray]:
    """DeepLabCut-like observations of ``true_pose``: ``(pose, likelihood)``, all finite."""
    t, p, _ = true_pose.shape
    # Correlated jitter (DLC errors drift slowly) plus a little white noise.
    # Two cascaded AR(1) filters give a smooth error of std ``jitter_px`` whose frame-to-frame
    # change is small (a still animal reads as still); a burn-in makes it stationary.
    phi, burn = 0.9, 100
    white = rng.standard_normal((t + burn, p, 2))
    gain = jitter_px / np.sqrt((1.0 + phi**2) / (1.0 - phi**2) ** 3)
    smooth = lfilter([gain], [1.0, -2.0 * phi, phi**2], white, axis=0)[burn:]
    pose = true_pose + smooth + 0.1 * rng.standard_normal((t, p, 2))

    # Confidence: mostly 0.95-1; small parts (nose, ears) are less sure, more so when grooming.
    scale = np.array([0.008, 0.015, 0.011, 0.011, 0.006, 0.009])[:p]
    like = 1.0 - rng.exponential(1.0, (t, p)) * scale
    groom = labels == _GROOM
    like[groom, 1:4] -= rng.exponential(0.03, (int(groom.sum()), min(3, p - 1)))
    like = np.clip(like, 0.6, 0.9999)

    x0, x1, y0, y1 = ARENA
    # Dropout bursts: likelihood < 0.3 and coordinates that jump to a wrong spot.
    n_burst = rng.poisson(dropout_rate * t / 1000.0 * np.array([1.0, 1.6, 1.2, 1.2, 0.6, 1.0])[:p])
    part = np.repeat(np.arange(p), n_burst)
    k = part.size
    if k:
        length = np.minimum(rng.geometric(1.0 / 7.0, k), 60)
        start = rng.integers(0, t, k)
        offs = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
        frame = np.minimum(np.repeat(start, length) + offs, t - 1)
        burst_part = np.repeat(part, length)
        garbage = np.stack([rng.uniform(x0, x1, k), rng.uniform(y0, y1, k)], axis=1)
        pose[frame, burst_part] = np.repeat(garbage, length, axis=0) + rng.normal(
            0.0, 6.0, (frame.size, 2)
        )
        like[frame, burst_part] = rng.uniform(0.001, 0.3, frame.size)
    # Single-frame outliers: a jump of 20-80 px with middling likelihood.
    hit = rng.random((t, p)) < outlier_rate / 1000.0
    fi, pi = np.nonzero(hit)
    if fi.size:
        ang = rng.uniform(0.0, 2 * np.pi, fi.size)
        dist = rng.uniform(20.0, 80.0, fi.size)
        pose[fi, pi] += dist[:, None] * np.stack([np.cos(ang), np.sin(ang)], axis=1)
        like[fi, pi] = rng.uniform(0.3, 0.7, fi.size)
    pose[..., 0] = np.clip(pose[..., 0], x0, x1)
    pose[..., 1] = np.clip(pose[..., 1], y0, y1)
    return pose.astype(np.float32), like.astype(np.float32)


def simulate_session(
    mouse_idx: int,
    day: int,
    condition: str,
    frames: int,
    rng: np.random.Generator,
    *,
    traits: MouseTraits | None = None,
    fps: float = FPS,
    centre_start: float = _CENTRE_START,
    centre_end: float = _CENTRE_END,
    dropout_rate: float = 2.5,
    outlier_rate: float = 2.0,
    jitter_px: float = 1.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate one session.

    Parameters
    ----------
    mouse_idx, day
        0-based mouse index and 1-based day (the day sets the learning stage).
    condition
        ``"experimental"`` (learns the centre port) or ``"control"``.
    frames
        Number of frames.
    rng
        The session's generator (see :func:`session_rng`).
    traits
        The mouse's body traits (see :func:`mouse_traits`); drawn from ``rng`` when ``None``.

    Returns
    -------
    pose, likelihood, true_labels
        ``(frames, 6, 2)`` float32 tracked coordinates (with DLC-like noise, dropouts and
        outliers; all finite, inside the image), ``(frames, 6)`` float32 likelihood, and
        ``(frames,)`` int64 indices into :data:`TRUE_BEHAVIOURS`.
    """
    if condition not in ("experimental", "control"):
        raise ValueError(f"condition must be 'experimental' or 'control', got {condition!r}")
    if traits is None:
        traits = MouseTraits(body_length=float(rng.uniform(82.0, 98.0)))
    track = _simulate_track(condition, day, frames, rng, traits, fps, centre_start, centre_end)
    true_pose = _skeleton(track, traits.body_length)
    pose, like = _tracking_noise(
        true_pose, track.labels, rng, fps, dropout_rate, outlier_rate, jitter_px
    )
    return pose, like, track.labels.astype(np.int64)


def _session_arrays(
    config: SyntheticConfig, mouse_idx: int, day: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return simulate_session(
        mouse_idx,
        day,
        condition_of(mouse_idx, config.mice),
        config.frames,
        session_rng(config.seed, mouse_idx, day),
        traits=mouse_traits(config.seed, mouse_idx),
        fps=config.fps,
        centre_start=config.centre_start,
        centre_end=config.centre_end,
        dropout_rate=config.dropout_rate,
        outlier_rate=config.outlier_rate,
        jitter_px=config.jitter_px,
    )


def generate_sessions(config: SyntheticConfig) -> list[Session]:
    """All sessions of ``config`` in memory, labelled with the true behaviour (no files)."""
    sessions = []
    for mi, mouse in enumerate(mouse_names(config.mice)):
        for day in range(1, config.days + 1):
            pose, like, labels = _session_arrays(config, mi, day)
            sessions.append(
                Session(
                    pose=pose,
                    likelihood=like,
                    bodyparts=BODYPARTS,
                    name=f"{mouse}_day{day}",
                    labels=labels,
                    label_names=TRUE_BEHAVIOURS,
                    mouse=mouse,
                    day=day,
                    condition=condition_of(mi, config.mice),
                    fps=config.fps,
                    extra={"scorer": SCORER},
                )
            )
    return sessions


# --------------------------------------------------------------------------------------------
# Files


def write_dlc_csv(
    path: str | Path,
    pose: np.ndarray,
    likelihood: np.ndarray,
    bodyparts: tuple[str, ...] = BODYPARTS,
    scorer: str = SCORER,
) -> None:
    """Write a single-animal DeepLabCut CSV (header rows ``scorer``, ``bodyparts``,
    ``coords``; first column the frame index; x, y with 3 decimals, likelihood with 4)."""
    t, p, _ = pose.shape
    lines = [
        ",".join(["scorer"] + [scorer] * (3 * p)),
        ",".join(["bodyparts"] + [b for b in bodyparts for _ in range(3)]),
        ",".join(["coords"] + ["x", "y", "likelihood"] * p),
    ]
    table = np.empty((t, 1 + 3 * p), dtype=np.float64)
    table[:, 0] = np.arange(t)
    table[:, 1::3] = pose[:, :, 0]
    table[:, 2::3] = pose[:, :, 1]
    table[:, 3::3] = likelihood
    row = ",".join(["%d"] + ["%.3f", "%.3f", "%.4f"] * p) + "\n"
    body = (row * t) % tuple(table.ravel().tolist())
    with open(path, "w", newline="") as fh:
        fh.write("\n".join(lines) + "\n")
        fh.write(body)


def _write_labels(path: Path, labels: np.ndarray) -> None:
    names = np.asarray(TRUE_BEHAVIOURS, dtype=object)[labels]
    frames = np.arange(len(labels)).astype(str).astype(object)
    body = "\n".join(frames + "," + names)
    with open(path, "w", newline="") as fh:
        fh.write("frame,label\n" + body + "\n")


def write_dataset(out_dir: str | Path, config: SyntheticConfig | None = None) -> Path:
    """Write every session of ``config`` into ``out_dir`` and return it.

    Files: ``{mouse}_day{day}.csv`` (DeepLabCut CSV, scorer ``DLC_synthetic``),
    ``{mouse}_day{day}.labels.csv`` (``frame,label`` with the true behaviour names),
    ``manifest.csv`` (``path,mouse,day,condition``, paths relative to ``out_dir``) and
    ``synthetic_config.json`` (the configuration and generator version).
    """
    config = config or SyntheticConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = ["path,mouse,day,condition"]
    for mi, mouse in enumerate(mouse_names(config.mice)):
        condition = condition_of(mi, config.mice)
        for day in range(1, config.days + 1):
            pose, like, labels = _session_arrays(config, mi, day)
            stem = f"{mouse}_day{day}"
            write_dlc_csv(out / f"{stem}.csv", pose, like)
            _write_labels(out / f"{stem}.labels.csv", labels)
            manifest.append(f"{stem}.csv,{mouse},{day},{condition}")
    (out / "synthetic_config.json").write_text(
        json.dumps({"generator_version": GENERATOR_VERSION, **asdict(config)}, indent=2) + "\n"
    )
    # The manifest last: its presence marks a complete dataset.
    (out / "manifest.csv").write_text("\n".join(manifest) + "\n")
    return out


def config_key(config: SyntheticConfig) -> str:
    """Short hash of the configuration and the generator version (the cache folder name)."""
    payload = json.dumps({"v": GENERATOR_VERSION, **asdict(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def default_cache_root() -> Path:
    """``$DBM_LIGHTNING_CACHE`` or ``~/.cache/dbm_lightning``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "dbm_lightning"


def ensure_dataset(
    config: SyntheticConfig | None = None, cache_root: str | Path | None = None
) -> Path:
    """The folder of the dataset of ``config``, generated on first use.

    The folder is ``<cache_root>/synthetic/<key>`` (``cache_root`` defaults to
    :func:`default_cache_root`; ``key`` = :func:`config_key`). It is written into a temporary
    sibling and renamed into place, so an interrupted run never leaves a partial dataset; a
    later call finds it and returns at once.
    """
    config = config or SyntheticConfig()
    base = (Path(cache_root).expanduser() if cache_root else default_cache_root()) / "synthetic"
    target = base / config_key(config)
    if (target / "manifest.csv").is_file():
        return target
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write_dataset(tmp, config)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "manifest.csv").is_file():  # not a concurrent winner: a real error
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
