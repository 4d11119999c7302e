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

**Domain shift** (``SyntheticConfig.domain_shift`` = ``s`` in [0, 1], ``dbm-synth
--domain-shift``): every mouse (or pair) draws, from its own generator seeded from
``(seed, mouse)``, a body size (x0.7..1.4), a camera scale (x0.6..1.5 image pixels per arena
pixel, i.e. pixels per cm; the whole arena image, ports included, so the arena's extent in
pixels differs per mouse), a camera rotation (0..360 degrees about the image centre) and
offset (the arena stays at non-negative pixels), a frame rate (one of 25, 30, 50, 60 fps;
bout durations and speeds stay the same in seconds, so frames per bout change; a session has
``frames`` frames whatever its rate) and a tracking-noise level (x0.5..2 jitter, dropouts,
outliers). Factors are ``full ** s``, angles and offsets ``s x full``, and the frame rate
changes with probability ``s``: ``s = 0`` (the default) is no shift, the files of generator
version 1 byte for byte. The manifest then has an ``fps`` column (each session's frame rate)
and ``domain_shift.json`` records every mouse's shift (:mod:`~dbm_lightning.synthetic.shift`).

**Landmarks** (``SyntheticConfig.landmarks``, ``dbm-synth --landmarks``, one animal): the three
ports are also tracked, as DeepLabCut users label an arena's fixed objects: parts
:data:`LANDMARKS` after the body parts, where each camera puts them, with a little jitter. A
feature that sees them (the egocentric pose) knows where the ports are in every camera.

**Two animals** (``SyntheticConfig.animals = 2``, ``dbm-synth --animals 2``): each session
``p01_day1`` .. holds a pair, individuals ``a`` and ``b``, written as a multi-animal
DeepLabCut CSV (header rows ``scorer``, ``individuals``, ``bodyparts``, ``coords``; every part
of ``a``, then of ``b``). The true labels are the pair behaviours ``apart``, ``approach``,
``follow`` and ``contact`` (:mod:`~dbm_lightning.synthetic.social`), which differ in the
kinematics of the pair (distance, its rate of change, relative heading), not in either
animal's own speed. In memory (:func:`generate_sessions`) a pair session has body parts
``"a/head", ..., "b/tail_base"``. ``swap_rate`` swaps the tracked identities for a few frames
(off by default). The domain shift applies per pair.

Modules: :mod:`~dbm_lightning.synthetic.model` (constants, configuration, mouse traits,
behaviour chain), :mod:`~dbm_lightning.synthetic.shift` (per-mouse domain shift),
:mod:`~dbm_lightning.synthetic.simulate` (tracks, skeleton, tracking noise, one mouse's
session), :mod:`~dbm_lightning.synthetic.social` (pairs),
:mod:`~dbm_lightning.synthetic.sessions` (the sessions of a configuration) and
:mod:`~dbm_lightning.synthetic.dataset` (files and the cache folder).
"""

from __future__ import annotations

from dbm_lightning.synthetic.dataset import config_key, ensure_dataset, write_dataset, write_dlc_csv
from dbm_lightning.synthetic.model import (
    ARENA,
    BODYPARTS,
    FPS,
    GENERATOR_VERSION,
    LANDMARKS,
    PORTS,
    SCORER,
    TRUE_BEHAVIOURS,
    MouseTraits,
    SyntheticConfig,
    behaviour_shares,
    condition_of,
    config_dict,
    mouse_names,
    mouse_traits,
    session_rng,
    transition_matrix,
)
from dbm_lightning.synthetic.sessions import (
    SessionData,
    generate_sessions,
    session_data,
    session_ids,
)
from dbm_lightning.synthetic.shift import SHIFT_FPS, DomainShift, mouse_shift
from dbm_lightning.synthetic.simulate import simulate_session
from dbm_lightning.synthetic.social import (
    INDIVIDUALS,
    PAIR_BEHAVIOURS,
    pair_bodyparts,
    pair_names,
    simulate_pair_session,
)

__all__ = [
    "ARENA",
    "BODYPARTS",
    "FPS",
    "GENERATOR_VERSION",
    "INDIVIDUALS",
    "LANDMARKS",
    "PAIR_BEHAVIOURS",
    "PORTS",
    "SCORER",
    "SHIFT_FPS",
    "TRUE_BEHAVIOURS",
    "DomainShift",
    "MouseTraits",
    "SessionData",
    "SyntheticConfig",
    "behaviour_shares",
    "condition_of",
    "config_dict",
    "config_key",
    "ensure_dataset",
    "generate_sessions",
    "mouse_names",
    "mouse_shift",
    "mouse_traits",
    "pair_bodyparts",
    "pair_names",
    "session_data",
    "session_ids",
    "session_rng",
    "simulate_pair_session",
    "simulate_session",
    "transition_matrix",
    "write_dataset",
    "write_dlc_csv",
]
