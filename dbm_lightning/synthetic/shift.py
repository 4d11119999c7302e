"""Per-mouse domain shift: every mouse (or pair) recorded with its own animal size, camera,
frame rate and tracking quality, so that a held-out-mouse split sees a real shift.

:func:`mouse_shift` draws a mouse's :class:`DomainShift` from its own generator, seeded from
``(seed, mouse)`` like its body traits, and scales it by the configuration's
``domain_shift`` strength ``s`` in [0, 1]: factors are ``full ** s`` (log-uniform full draws in
:data:`BODY_SCALE`, :data:`CAMERA_SCALE`, :data:`NOISE_SCALE`), the rotation ``s * U(0, 360)``
degrees about the image centre, the offset ``s * U(-80, 80)`` px per axis (then pushed so
that the arena stays at non-negative pixel coordinates), and the frame rate one of
:data:`SHIFT_FPS` with probability ``s`` (else the configuration's). ``s = 0`` is no shift at
all (the identity, the data of generator version 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dbm_lightning.synthetic.model import ARENA, PORTS

SHIFT_FPS: tuple[float, ...] = (25.0, 30.0, 50.0, 60.0)
"""Frame rates a shifted mouse may be recorded at."""
BODY_SCALE = (0.7, 1.4)
"""Range of the body-size factor (body length in the arena, x the mouse's own trait)."""
CAMERA_SCALE = (0.6, 1.5)
"""Range of the camera-scale factor (image pixels per arena pixel: pixels per cm)."""
NOISE_SCALE = (0.5, 2.0)
"""Range of the tracking-noise factor (jitter, dropout and outlier rates)."""
MAX_OFFSET_PX = 80.0
IMAGE_CENTRE = ((ARENA[0] + ARENA[1]) / 2.0, (ARENA[2] + ARENA[3]) / 2.0)


@dataclass(frozen=True)
class DomainShift:
    """How one mouse's (or pair's) recordings differ from the default box.

    ``body_scale``: body-length factor. ``camera_scale``: image pixels per arena pixel.
    ``rotation``: camera rotation about the image centre (radians). ``offset``: image shift
    (px) after scaling and rotation. ``fps``: frame rate (``None``: the configuration's).
    ``noise_scale``: factor on the tracking jitter and on the dropout and outlier rates.
    """

    body_scale: float = 1.0
    camera_scale: float = 1.0
    rotation: float = 0.0
    offset: tuple[float, float] = (0.0, 0.0)
    fps: float | None = None
    noise_scale: float = 1.0

    @property
    def is_identity(self) -> bool:
        """True when nothing is shifted."""
        return self == DomainShift()

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Arena pixels (``(..., 2)``, the default camera) -> this camera's image pixels."""
        xy = np.asarray(xy, dtype=np.float64)
        if self.is_identity:
            return xy
        cos, sin = np.cos(self.rotation), np.sin(self.rotation)
        matrix = self.camera_scale * np.array([[cos, -sin], [sin, cos]])
        centre = np.array(IMAGE_CENTRE)
        return (xy - centre) @ matrix.T + centre + np.asarray(self.offset)

    def arena_corners(self) -> np.ndarray:
        """``(4, 2)`` image pixels of the arena's corners (top-left, top-right, bottom-right,
        bottom-left of the default image)."""
        x0, x1, y0, y1 = ARENA
        return self.to_image(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))

    def ports(self) -> dict[str, tuple[float, float]]:
        """Where the ports are in this camera's image."""
        return {k: tuple(float(v) for v in self.to_image(np.array(p))) for k, p in PORTS.items()}

    def to_dict(self, fps: float) -> dict:
        """JSON-able description (``fps``: the frame rate used when :attr:`fps` is ``None``)."""
        return {
            "body_scale": self.body_scale,
            "camera_scale": self.camera_scale,
            "rotation_deg": float(np.degrees(self.rotation)),
            "offset_px": list(self.offset),
            "fps": float(self.fps or fps),
            "noise_scale": self.noise_scale,
            "arena_corners_px": self.arena_corners().round(3).tolist(),
            "ports_px": {k: [round(v, 3) for v in p] for k, p in self.ports().items()},
        }


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float], strength: float) -> float:
    full = rng.uniform(np.log(bounds[0]), np.log(bounds[1]))
    return float(np.exp(strength * full))


def mouse_shift(seed: int, mouse_idx: int, strength: float) -> DomainShift:
    """The domain shift of one mouse (or pair) at ``strength`` in [0, 1] (0: none).

    Every value is drawn whatever the strength, so a larger strength moves the same mouse
    further in the same direction.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"domain shift strength must be in [0, 1], got {strength}")
    if strength == 0.0:
        return DomainShift()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(mouse_idx), 2_000_003]))
    body = _log_uniform(rng, BODY_SCALE, strength)
    camera = _log_uniform(rng, CAMERA_SCALE, strength)
    rotation = strength * float(rng.uniform(0.0, 2.0 * np.pi))
    offset = strength * rng.uniform(-MAX_OFFSET_PX, MAX_OFFSET_PX, 2)
    pick_fps, fps_choice = rng.random(), int(rng.integers(len(SHIFT_FPS)))
    noise = _log_uniform(rng, NOISE_SCALE, strength)
    shift = DomainShift(body, camera, rotation, (0.0, 0.0), None, noise)
    low = shift.arena_corners().min(axis=0) + offset
    offset = offset + np.maximum(0.0, -low)  # the arena at non-negative pixel coordinates
    return DomainShift(
        body_scale=body,
        camera_scale=camera,
        rotation=rotation,
        offset=(float(offset[0]), float(offset[1])),
        fps=SHIFT_FPS[fps_choice] if pick_fps < strength else None,
        noise_scale=noise,
    )
