"""Simulation of one mouse's session: behaviour bouts filling a latent track (body-centre path,
heading, posture), the six-part skeleton, DeepLabCut-like tracking noise, and
:func:`simulate_session` on top of them. The track, walk, skeleton and noise helpers are also
the pieces of the two-animal simulation (:mod:`~dbm_lightning.synthetic.social`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.signal import lfilter

from dbm_lightning.session import DEFAULT_FPS
from dbm_lightning.synthetic.model import (
    ARENA,
    CENTRE_END,
    CENTRE_START,
    DURATION,
    GROOM,
    LOCO,
    MAX_DUR,
    MIN_DUR,
    PORT_IDX,
    PORTS,
    REAR,
    REST,
    TRUE_BEHAVIOURS,
    MouseTraits,
    behaviour_shares,
    transition_matrix,
)
from dbm_lightning.synthetic.shift import DomainShift

# Body-part offsets along the body axis, as fractions of the body length (body centre = 0).
HEAD_AT, NOSE_AT, EAR_AT, EAR_SPAN, TAIL_AT = 0.40, 0.60, 0.29, 0.09, 0.45
MARGIN = 62.0  # body centre stays this far from the walls, so every part stays inside
BODY_BOX = (ARENA[0] + MARGIN, ARENA[1] - MARGIN, ARENA[2] + MARGIN, ARENA[3] - MARGIN)
Box = tuple[float, float, float, float]


def body_box(body_scale: float = 1.0) -> Box:
    """Where the body centre may go (``x0, x1, y0, y1``): :data:`BODY_BOX`, its margin grown
    for animals larger than usual (``body_scale`` > 1) so that every part stays inside."""
    if body_scale <= 1.0:
        return BODY_BOX
    m = MARGIN * body_scale
    return (ARENA[0] + m, ARENA[1] - m, ARENA[2] + m, ARENA[3] - m)


# --------------------------------------------------------------------------------------------
# Bouts: each fills a slice of per-frame arrays of body-centre position, heading and posture.


@dataclass
class Track:
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
    def empty(cls, n: int) -> Track:
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

    def cut(self, n: int) -> Track:
        """The first ``n`` frames."""
        return Track(**{k: v[:n] for k, v in vars(self).items()})


def _ramp(n: int, fps: float, rise_s: float = 0.25) -> np.ndarray:
    """Smooth 0 -> 1 -> 0 envelope over ``n`` frames (rise/fall of ``rise_s`` seconds)."""
    k = max(1, min(int(round(rise_s * fps)), n // 3))
    t = np.arange(n, dtype=float)
    up = np.clip((t + 1) / k, 0.0, 1.0)
    down = np.clip((n - t) / k, 0.0, 1.0)
    env = np.minimum(up, down)
    return env * env * (3.0 - 2.0 * env)


def duration_frames(behaviour: int, rng: np.random.Generator, fps: float) -> int:
    """A bout length (frames) of ``behaviour``: lognormal seconds, clipped, times ``fps``."""
    median, sigma = DURATION[behaviour]
    seconds = float(np.clip(median * np.exp(sigma * rng.standard_normal()), MIN_DUR, MAX_DUR))
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


def inside(p: np.ndarray, box: Box = BODY_BOX) -> np.ndarray:
    """Whether the points ``p`` (``(..., 2)``) lie in ``box``."""
    x0, x1, y0, y1 = box
    return (p[..., 0] >= x0) & (p[..., 0] <= x1) & (p[..., 1] >= y0) & (p[..., 1] <= y1)


def walk(
    pos: np.ndarray,
    heading: float,
    target: np.ndarray | None,
    end_heading: float | None,
    rng: np.random.Generator,
    traits: MouseTraits,
    fps: float,
    box: Box = BODY_BOX,
) -> tuple[np.ndarray, np.ndarray]:
    """A locomotion bout: to ``target`` (a port approach) or to a random reachable point of
    ``box``; returns the body centre ``(n, 2)`` and heading ``(n,)`` of its frames."""
    speed = float(np.clip(rng.uniform(190.0, 330.0) * traits.speed_scale, 170.0, 380.0))
    if target is None:
        seconds = duration_frames(LOCO, rng, fps) / fps
        length = speed * seconds
        angles = heading + rng.normal(0.0, 1.0, 16)
        cand = pos + length * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        ok = np.flatnonzero(inside(cand, box))
        if ok.size:
            target = cand[ok[0]]
        else:  # hemmed in by walls: head for a random point of the arena
            x0, x1, y0, y1 = box
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
    x0, x1, y0, y1 = box
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
    centre = head_target - HEAD_AT * traits.body_length * axis
    return centre, heading, head_target


def fill_still(
    track: Track,
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
    if behaviour == GROOM:
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
    elif behaviour == REAR:
        track.head_scale[sl] = 1.0 - 0.45 * env
        track.ear_scale[sl] = 1.0 - 0.5 * env
        track.tail_scale[sl] = 1.0 - 0.25 * env
        w = 2 * np.pi * rng.uniform(1.0, 2.0)
        wobble = np.stack([np.sin(w * t), np.cos(1.3 * w * t)], axis=1)
        track.head_extra[sl] = (env * 2.5)[:, None] * wobble
    elif behaviour in PORT_IDX.values():
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
    box: Box = BODY_BOX,
    steady: tuple[str, ...] = (),
) -> Track:
    shares = behaviour_shares(condition, day, centre_start, centre_end, traits.preference, steady)
    trans = np.cumsum(transition_matrix(shares, steady), axis=1)
    buffer = frames + int(12 * fps)
    track = Track.empty(buffer)
    x0, x1, y0, y1 = box
    pos = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
    heading = float(rng.uniform(-np.pi, np.pi))
    t = 0
    behaviour = REST
    while t < frames:
        if behaviour == LOCO:
            centre, head = walk(pos, heading, None, None, rng, traits, fps, box)
            n = len(centre)
            sl = slice(t, min(t + n, buffer))
            m = sl.stop - sl.start
            track.centre[sl], track.heading[sl], track.labels[sl] = centre[:m], head[:m], LOCO
            pos, heading = centre[m - 1], float(head[m - 1])
            t = sl.stop
        else:
            name = TRUE_BEHAVIOURS[behaviour]
            if name in PORTS:
                stand, stand_heading, _ = _port_pose(name, rng, traits)
                if np.hypot(*(stand - pos)) > 15.0:
                    centre, head = walk(pos, heading, stand, stand_heading, rng, traits, fps, box)
                    sl = slice(t, min(t + len(centre), buffer))
                    m = sl.stop - sl.start
                    track.centre[sl], track.heading[sl] = centre[:m], head[:m]
                    track.labels[sl] = LOCO
                    t = sl.stop
                pos, heading = stand, stand_heading
                if t >= frames:
                    break
            n = duration_frames(behaviour, rng, fps)
            sl = slice(t, min(t + n, buffer))
            fill_still(track, sl, behaviour, pos, heading, rng, fps)
            t = sl.stop
            if name in PORTS and t < frames:  # walk away from the wall after a port visit
                away = np.pi / 2 + rng.normal(0.0, 0.5)
                dist = rng.uniform(110.0, 200.0)
                x0, x1, y0, y1 = box
                goal = pos + dist * np.array([np.cos(away), np.sin(away)])
                goal = np.clip(goal, [x0, y0], [x1, y1])
                centre, head = walk(pos, heading, goal, away, rng, traits, fps, box)
                sl = slice(t, min(t + len(centre), buffer))
                m = sl.stop - sl.start
                track.centre[sl], track.heading[sl] = centre[:m], head[:m]
                track.labels[sl] = LOCO
                pos, heading = centre[m - 1], float(head[m - 1])
                t = sl.stop
        behaviour = int(np.searchsorted(trans[behaviour], rng.random(), side="right"))
        behaviour = min(behaviour, len(TRUE_BEHAVIOURS) - 1)
    return track.cut(frames)


def skeleton(track: Track, body_length: float) -> np.ndarray:
    """``(T, 6, 2)`` true body-part positions from the latent track."""
    axis = np.stack([np.cos(track.heading), np.sin(track.heading)], axis=1)
    perp = np.stack([-axis[:, 1], axis[:, 0]], axis=1)
    c = track.centre
    hs = (track.head_scale * body_length)[:, None]
    head = c + HEAD_AT * hs * axis + track.head_extra
    nose = c + NOSE_AT * hs * axis + track.head_extra + track.nose_extra
    ear_base = c + EAR_AT * hs * axis + 0.8 * track.head_extra
    span = (EAR_SPAN * body_length * track.ear_scale)[:, None] * perp
    # image y grows downwards, so the animal's left is -perp (heading up: left is smaller x)
    left_ear = ear_base - span
    right_ear = ear_base + span
    tail = c - (TAIL_AT * body_length * track.tail_scale)[:, None] * axis
    return np.stack([head, nose, left_ear, right_ear, c, tail], axis=1)


def tracking_noise(
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
    groom = labels == GROOM
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
    fps: float = DEFAULT_FPS,
    centre_start: float = CENTRE_START,
    centre_end: float = CENTRE_END,
    dropout_rate: float = 2.5,
    outlier_rate: float = 2.0,
    jitter_px: float = 1.5,
    shift: DomainShift | None = None,
    steady: tuple[str, ...] = (),
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
    shift
        The mouse's domain shift (see :func:`~dbm_lightning.synthetic.shift.mouse_shift`):
        body size, frame rate (its ``fps``, when set, replaces ``fps``), tracking-noise level
        and camera (the returned pose is in its image pixels). ``None``: no shift.
    steady
        Behaviours whose share stays at its day-1 value (see
        :func:`~dbm_lightning.synthetic.model.behaviour_shares`).

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
    shift = shift if shift is not None and not shift.is_identity else None
    box, noise = BODY_BOX, 1.0
    if shift is not None:
        fps = shift.fps or fps
        traits = replace(traits, body_length=traits.body_length * shift.body_scale)
        box, noise = body_box(shift.body_scale), shift.noise_scale
    track = _simulate_track(
        condition, day, frames, rng, traits, fps, centre_start, centre_end, box, steady
    )
    true_pose = skeleton(track, traits.body_length)
    pose, like = tracking_noise(
        true_pose,
        track.labels,
        rng,
        fps,
        dropout_rate * noise,
        outlier_rate * noise,
        jitter_px * noise,
    )
    if shift is not None:
        pose = shift.to_image(pose).astype(np.float32)
    return pose, like, track.labels.astype(np.int64)
