"""Two mice in the box, with pair behaviours that only features of both animals tell apart.

A pair session holds the animals :data:`INDIVIDUALS` (``a`` and ``b``); its true labels
(:data:`PAIR_BEHAVIOURS`) describe the pair. Body centres, headings and postures are
:class:`~dbm_lightning.synthetic.simulate.Track` objects filled bout by bout with the
single-animal machinery (walks, still bouts, skeleton, tracking noise):

- ``apart``: no interaction. The animals keep to opposite sides of the arena (body centres
  at least 2.2 body lengths apart), each resting, grooming, rearing or walking on its own;
  the bout starts with the walks that separate them after an interaction.
- ``approach``: one animal walks up to the other (which rests or grooms) until its nose is
  next to the other's nose, flank or tail base: the distance between them shrinks at walking
  speed.
- ``follow``: the one approached walks off (turning away first when needed) and the other
  walks behind it along its path, a fixed distance behind along the path (its nose near the
  leader's tail base), heading at the leader.
- ``contact``: both bodies still, one nose at the other's nose (both sniff), flank or tail
  base (sniffing: quick small nose movements).

Each animal's own movement in ``apart`` and in ``approach`` is a mix of walks and still bouts
at the same speeds, so one animal's own speed or pose cannot tell the two apart: the distance
between the animals and its rate of change can. Transitions: apart -> approach -> contact or
follow; contact -> apart or follow; follow -> contact or apart. Experimental pairs become more
social: their ``apart`` bouts shorten from a median of 3.5 s on day 1 to half that on day 7
(controls keep day 1's). ``swap_rate`` > 0 swaps the tracked identities (pose and likelihood
of ``a`` and ``b``) for runs of a few frames, as trackers do; the labels, which describe the
pair, are unchanged.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from dbm_lightning.session import DEFAULT_FPS
from dbm_lightning.synthetic.model import BODYPARTS, GROOM, LOCO, REAR, REST, MouseTraits
from dbm_lightning.synthetic.shift import DomainShift
from dbm_lightning.synthetic.simulate import (
    BODY_BOX,
    NOSE_AT,
    TAIL_AT,
    Box,
    Track,
    body_box,
    duration_frames,
    fill_still,
    inside,
    skeleton,
    tracking_noise,
    walk,
)

INDIVIDUALS: tuple[str, ...] = ("a", "b")
PAIR_BEHAVIOURS: tuple[str, ...] = ("apart", "approach", "follow", "contact")
APART, APPROACH, FOLLOW, CONTACT = range(4)

_NEXT = {
    APART: ((APPROACH,), (1.0,)),
    APPROACH: ((CONTACT, FOLLOW), (0.6, 0.4)),
    CONTACT: ((APART, FOLLOW), (0.6, 0.4)),
    FOLLOW: ((CONTACT, APART), (0.45, 0.55)),
}
_APART_S = (3.5, 0.5, 1.0, 10.0)  # time apart once separated (s): median, sigma, min, max
_CONTACT_S = (2.0, 0.4, 0.6, 5.0)
_GAP_BODY = 2.2  # body centres at least this many body lengths apart while apart
_SOLO = ((REST, GROOM, REAR), (0.5, 0.3, 0.2))  # an animal keeping still on its own
_FLANK_AT = 0.1  # the flank, from the body axis (body lengths)


def pair_names(n: int) -> list[str]:
    """``p01``, ``p02``, ... (wider when there are 100 pairs or more)."""
    width = max(2, len(str(n)))
    return [f"p{i + 1:0{width}d}" for i in range(n)]


def pair_bodyparts(parts: tuple[str, ...] = BODYPARTS) -> tuple[str, ...]:
    """The session body parts of a pair: ``"a/head", ..., "b/head", ...`` (individual-major)."""
    return tuple(f"{ind}/{part}" for ind in INDIVIDUALS for part in parts)


def _angle(v: np.ndarray) -> float:
    return float(np.arctan2(v[1], v[0]))


def _unit(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)])


class _Animal:
    """One animal of the pair: its track (filled bout by bout) and where it is now."""

    def __init__(self, traits: MouseTraits, buffer: int, pos: np.ndarray, heading: float):
        self.track = Track.empty(buffer)
        self.traits = traits
        self.pos = pos
        self.heading = heading

    @property
    def length(self) -> float:
        return self.traits.body_length

    def path(self, t: int, stop: int, centre: np.ndarray, heading: np.ndarray) -> int:
        """Frames ``t ..`` of a walk (cut at ``stop``); returns the next free frame."""
        m = min(len(centre), stop - t)
        if m <= 0:
            return t
        sl = slice(t, t + m)
        self.track.centre[sl], self.track.heading[sl] = centre[:m], heading[:m]
        self.track.labels[sl] = LOCO
        self.pos, self.heading = centre[m - 1].copy(), float(heading[m - 1])
        return t + m

    def still(self, t: int, stop: int, behaviour: int, rng: np.random.Generator, fps: float):
        if stop > t:
            fill_still(self.track, slice(t, stop), behaviour, self.pos, self.heading, rng, fps)
        return stop


class _Pair:
    """The bouts of one pair session, filling both animals' tracks and the pair labels."""

    def __init__(
        self,
        traits: tuple[MouseTraits, MouseTraits],
        frames: int,
        rng: np.random.Generator,
        fps: float,
        box: Box,
        apart_scale: float,
    ):
        self.rng, self.fps, self.box, self.apart_scale = rng, fps, box, apart_scale
        self.buffer = frames + int(30 * fps)
        self.labels = np.zeros(self.buffer, dtype=np.int64)
        x0, x1, y0, y1 = box
        gap = min(_GAP_BODY * float(np.mean([t.body_length for t in traits])), 0.6 * (x1 - x0))
        mid = (x0 + x1) / 2.0
        self.sides = ((x0, mid - gap / 2.0, y0, y1), (mid + gap / 2.0, x1, y0, y1))
        first = int(rng.integers(2))
        self.animals = tuple(
            _Animal(
                tr,
                self.buffer,
                self._point(self.sides[(i + first) % 2]),
                rng.uniform(-np.pi, np.pi),
            )
            for i, tr in enumerate(traits)
        )
        self.roles: tuple[_Animal, _Animal, str] = (*self.animals, "tail")

    def _point(self, box: Box) -> np.ndarray:
        x0, x1, y0, y1 = box
        return np.array([self.rng.uniform(x0, x1), self.rng.uniform(y0, y1)])

    def _frames(self, spec: tuple[float, float, float, float], scale: float = 1.0) -> int:
        median, sigma, low, high = spec
        seconds = np.clip(scale * median * np.exp(sigma * self.rng.standard_normal()), low, high)
        return max(2, int(round(float(seconds) * self.fps)))

    def run(self, frames: int) -> tuple[Track, Track, np.ndarray]:
        bouts = {
            APART: self.apart,
            APPROACH: self.approach,
            FOLLOW: self.follow,
            CONTACT: self.contact,
        }
        t, bout = 0, APART
        while t < frames:
            stop = bouts[bout](t)
            self.labels[t:stop] = bout
            t = stop
            options, p = _NEXT[bout]
            bout = options[min(int(np.searchsorted(np.cumsum(p), self.rng.random())), len(p) - 1)]
        a, b = self.animals
        return a.track.cut(frames), b.track.cut(frames), self.labels[:frames]

    # ------------------------------------------------------------------------------ bouts

    def apart(self, t: int) -> int:
        rng, fps = self.rng, self.fps
        a, b = self.animals
        sides = self.sides if a.pos[0] <= b.pos[0] else self.sides[::-1]
        leaves = []
        for animal, side in zip(self.animals, sides, strict=True):
            if inside(animal.pos, side):
                leaves.append(None)
                continue
            goal = self._point(side)
            end = _angle(goal - animal.pos) + rng.normal(0.0, 0.4)
            leaves.append(
                walk(animal.pos, animal.heading, goal, end, rng, animal.traits, fps, self.box)
            )
        leave = max(len(w[0]) if w is not None else 0 for w in leaves)
        stop = min(t + leave + self._frames(_APART_S, self.apart_scale), self.buffer)
        for animal, side, way in zip(self.animals, sides, leaves, strict=True):
            u = animal.path(t, stop, *way) if way is not None else t
            walking = rng.random() < 0.4
            while u < stop:
                if walking:
                    route = walk(
                        animal.pos, animal.heading, None, None, rng, animal.traits, fps, side
                    )
                    u = animal.path(u, stop, *route)
                else:
                    kind = int(rng.choice(_SOLO[0], p=_SOLO[1]))
                    u = animal.still(
                        u, min(stop, u + duration_frames(kind, rng, fps)), kind, rng, fps
                    )
                walking = not walking
        return stop

    def _contact_spot(self, x: _Animal, y: _Animal) -> tuple[np.ndarray, float, str]:
        """Where ``x``'s body centre stands, and its heading, to put its nose at ``y``."""
        axis = _unit(y.heading)
        perp = np.array([-axis[1], axis[0]])
        gap = self.rng.uniform(4.0, 14.0)
        reach = gap + NOSE_AT * x.length
        spots = [
            (y.pos + (NOSE_AT * y.length + reach) * axis, y.heading + np.pi, "nose"),
            (y.pos - (TAIL_AT * y.length + reach) * axis, y.heading, "tail"),
            (y.pos + (_FLANK_AT * y.length + reach) * perp, _angle(-perp), "flank"),
            (y.pos - (_FLANK_AT * y.length + reach) * perp, _angle(perp), "flank"),
        ]
        fits = [s for s in spots if inside(s[0], self.box)] or spots
        if self.rng.random() < 0.7:
            pick = int(np.argmin([np.hypot(*(s[0] - x.pos)) for s in fits]))
        else:
            pick = int(self.rng.integers(len(fits)))
        goal, heading, kind = fits[pick]
        x0, x1, y0, y1 = self.box
        return np.clip(goal, [x0, y0], [x1, y1]), float(heading), kind

    def approach(self, t: int) -> int:
        rng = self.rng
        i = int(rng.integers(2))
        x, y = self.animals[i], self.animals[1 - i]
        goal, heading, kind = self._contact_spot(x, y)
        route = walk(x.pos, x.heading, goal, heading, rng, x.traits, self.fps, self.box)
        stop = min(t + len(route[0]), self.buffer)
        x.path(t, stop, *route)
        y.still(t, stop, REST if rng.random() < 0.6 else GROOM, rng, self.fps)
        self.roles = (x, y, kind)
        return stop

    def _sniff(self, animal: _Animal, t: int, stop: int) -> None:
        """A still body whose nose moves quickly to and fro along the body axis."""
        rng = self.rng
        animal.still(t, stop, REST, rng, self.fps)
        tt = np.arange(stop - t) / self.fps
        env = np.clip(np.minimum(tt, tt[-1] - tt) / 0.2, 0.0, 1.0)[:, None]
        w = 2 * np.pi * rng.uniform(4.0, 7.0)
        poke = rng.uniform(2.0, 5.0) * 0.5 * (1.0 - np.cos(w * tt))
        animal.track.nose_extra[t:stop] = env * poke[:, None] * _unit(animal.heading)
        sway = rng.normal(0.0, 1.5, 2)
        animal.track.head_extra[t:stop] = env * np.sin(2 * np.pi * tt)[:, None] * sway

    def contact(self, t: int) -> int:
        x, y, kind = self.roles
        stop = min(t + self._frames(_CONTACT_S), self.buffer)
        self._sniff(x, t, stop)
        if kind == "nose":
            self._sniff(y, t, stop)
        else:
            y.still(t, stop, REST, self.rng, self.fps)
        return stop

    def _ahead(self, pos: np.ndarray, heading: float, fallback: bool = False):
        """A point of the box 150-320 px from ``pos``, within about 30 degrees of ``heading``;
        when there is none (a wall ahead), ``None`` or, with ``fallback``, the point 100-250 px
        away of the box closest to that direction (along the wall rather than back)."""
        rng = self.rng
        angles = heading + rng.normal(0.0, 0.5, 16)
        cand = pos + rng.uniform(150.0, 320.0) * np.stack([np.cos(angles), np.sin(angles)], 1)
        ok = np.flatnonzero(inside(cand, self.box))
        if ok.size or not fallback:
            return cand[ok[0]] if ok.size else None
        angles = heading + np.linspace(-np.pi, np.pi, 32, endpoint=False) + rng.uniform(0, 0.2)
        cand = pos + rng.uniform(100.0, 250.0) * np.stack([np.cos(angles), np.sin(angles)], 1)
        ok = np.flatnonzero(inside(cand, self.box))
        if not ok.size:
            return self._point(self.box)
        return cand[ok[np.argmax(np.cos(angles[ok] - heading))]]

    def follow(self, t: int) -> int:
        rng, fps, box = self.rng, self.fps, self.box
        x, y, _ = self.roles  # x follows y
        # The leader walks away from the follower, then (half the time) on, never back.
        target = self._ahead(y.pos, _angle(y.pos - x.pos), fallback=True)
        end = _angle(target - y.pos) + rng.normal(0.0, 0.3)
        legs = [walk(y.pos, y.heading, target, end, rng, y.traits, fps, box)]
        on = self._ahead(legs[0][0][-1], float(legs[0][1][-1])) if rng.random() < 0.5 else None
        if on is not None:
            end = _angle(on - legs[0][0][-1]) + rng.normal(0.0, 0.3)
            legs.append(
                walk(legs[0][0][-1], float(legs[0][1][-1]), on, end, rng, y.traits, fps, box)
            )
        centre = np.concatenate([leg[0] for leg in legs])
        heading = np.concatenate([leg[1] for leg in legs])
        stop = min(t + len(centre), self.buffer)
        # The follower walks to where the leader started, then along the leader's path, a
        # path distance ``gap`` behind it (reached within about half a second).
        points = np.vstack([x.pos, centre])
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
        want = TAIL_AT * y.length + NOSE_AT * x.length + rng.uniform(8.0, 20.0)
        lag = np.arange(len(centre)) / (0.5 * fps)
        gap = want + max(0.0, arc[1] - want) * np.exp(-lag)
        s = np.maximum.accumulate(np.clip(arc[1:] - gap, 0.0, None))
        trail = np.stack([np.interp(s, arc, points[:, 0]), np.interp(s, arc, points[:, 1])], 1)
        k = np.clip(np.searchsorted(arc, s, side="right"), 1, len(arc) - 1)
        seg = points[k] - points[k - 1]
        trail_heading = np.unwrap(np.r_[x.heading, np.arctan2(seg[:, 1], seg[:, 0])])[1:]
        x.path(t, stop, trail, trail_heading)
        y.path(t, stop, centre, heading)
        self.roles = (x, y, "tail")
        return stop


def _swap_identities(
    pose: np.ndarray, like: np.ndarray, rng: np.random.Generator, rate: float
) -> None:
    """Exchange the two animals' tracked data (in place) in runs of 1-30 frames (mean ~5),
    ``rate`` runs per 1,000 frames."""
    t, n_parts = pose.shape[0], pose.shape[1] // 2
    n = rng.poisson(rate * t / 1000.0)
    if not n:
        return
    length = np.minimum(rng.geometric(1.0 / 5.0, n), 30)
    start = rng.integers(0, t, n)
    edges = np.zeros(t + 1, dtype=np.int64)
    np.add.at(edges, start, 1)
    np.add.at(edges, np.minimum(start + length, t), -1)
    swapped = np.cumsum(edges)[:t] > 0
    order = np.r_[np.arange(n_parts, 2 * n_parts), np.arange(n_parts)]
    pose[swapped] = pose[swapped][:, order]
    like[swapped] = like[swapped][:, order]


def simulate_pair_session(
    condition: str,
    day: int,
    frames: int,
    rng: np.random.Generator,
    *,
    traits: tuple[MouseTraits, MouseTraits] = (MouseTraits(), MouseTraits()),
    fps: float = DEFAULT_FPS,
    dropout_rate: float = 2.5,
    outlier_rate: float = 2.0,
    jitter_px: float = 1.5,
    swap_rate: float = 0.0,
    shift: DomainShift | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulate one pair session.

    ``condition`` (``"experimental"``: more social over the days, or ``"control"``), ``day``
    (1-based), ``rng`` (the session's generator), ``traits`` (of ``a`` and ``b``), the noise
    levels and ``shift`` are as for :func:`~dbm_lightning.synthetic.simulate.simulate_session`
    (the shift applies to the pair: both bodies, the camera, frame rate and noise).

    Returns
    -------
    pose, likelihood, labels
        ``(frames, 12, 2)`` float32 tracked coordinates of ``a``'s six parts then ``b``'s
        (:func:`pair_bodyparts`), ``(frames, 12)`` float32 likelihood and ``(frames,)`` int64
        indices into :data:`PAIR_BEHAVIOURS`.
    """
    if condition not in ("experimental", "control"):
        raise ValueError(f"condition must be 'experimental' or 'control', got {condition!r}")
    shift = shift if shift is not None and not shift.is_identity else None
    box, noise = BODY_BOX, 1.0
    if shift is not None:
        fps = shift.fps or fps
        traits = tuple(replace(tr, body_length=tr.body_length * shift.body_scale) for tr in traits)
        box, noise = body_box(shift.body_scale), shift.noise_scale
    progress = float(np.clip((day - 1) / 6.0, 0.0, 1.0)) if condition == "experimental" else 0.0
    tracks = _Pair(traits, frames, rng, fps, box, 1.0 - 0.5 * progress).run(frames)
    labels = tracks[2]
    observed = [
        tracking_noise(
            skeleton(track, tr.body_length),
            track.labels,
            rng,
            fps,
            dropout_rate * noise,
            outlier_rate * noise,
            jitter_px * noise,
        )
        for track, tr in zip(tracks[:2], traits, strict=True)
    ]
    pose = np.concatenate([o[0] for o in observed], axis=1)
    like = np.concatenate([o[1] for o in observed], axis=1)
    if swap_rate > 0:
        _swap_identities(pose, like, rng, swap_rate)
    if shift is not None:
        pose = shift.to_image(pose).astype(np.float32)
    return pose, like, labels.astype(np.int64)
