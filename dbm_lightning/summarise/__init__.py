"""After prediction: what a behavioural study compares groups with (``dbm-summarise``).

- :mod:`.budget`: a ``dbm-predict`` folder read back, each session with its mouse, day and
  condition; the time budget, bouts and latency per session x behaviour; bout-to-bout
  transitions.
- :mod:`.stats`: conditions compared within each day (Mann-Whitney U or Welch's t), the
  condition x day mixed model (mouse as the random effect), Benjamini-Hochberg, effect sizes.
- :mod:`.figures`: each behaviour by day, one line per condition; the transition graph.
- :mod:`.bout_poses`, :mod:`.snippets`, :mod:`.trajectories`: which bouts, the skeleton and
  the egocentric alignment; pose-only animations of random bouts; mean egocentric trajectories.
- :mod:`.overlay`: a labelled video, for users who have the recording (the ``video`` extra).
- :mod:`.report` (with :mod:`.markdown`): :func:`summarise`, all of it written into one folder
  with a Markdown summary.
"""

from dbm_lightning.summarise.report import summarise

__all__ = ["summarise"]
