"""Console scripts (``dbm-train``, ``dbm-synth``, ...): the only modules that import Hydra."""
