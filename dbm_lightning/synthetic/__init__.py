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


Modules: :mod:`~dbm_lightning.synthetic.model` (constants, configuration, mouse traits,
behaviour chain), :mod:`~dbm_lightning.synthetic.simulate` (tracks, skeleton, tracking noise,
sessions) and :mod:`~dbm_lightning.synthetic.dataset` (files and the cache folder).
"""

from __future__ import annotations

from dbm_lightning.synthetic.dataset import config_key, ensure_dataset, write_dataset, write_dlc_csv
from dbm_lightning.synthetic.model import (
    ARENA,
    BODYPARTS,
    FPS,
    GENERATOR_VERSION,
    PORTS,
    SCORER,
    TRUE_BEHAVIOURS,
    MouseTraits,
    SyntheticConfig,
    behaviour_shares,
    condition_of,
    mouse_names,
    mouse_traits,
    session_rng,
    transition_matrix,
)
from dbm_lightning.synthetic.simulate import generate_sessions, simulate_session

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
