"""Console scripts (``dbm-train``, ``dbm-synth``, ...): the only modules that import Hydra."""


def parse_renames(items: list[str]) -> dict[str, str]:
    """``--rename OLD=NEW ...`` as a dict; ``ValueError`` naming the first item that is not
    ``OLD=NEW`` with a non-empty ``OLD``."""
    bad = [r for r in items if "=" not in r or not r.split("=", 1)[0].strip()]
    if bad:
        raise ValueError(f"--rename takes OLD=NEW pairs, got {bad[0]!r}")
    return dict(r.split("=", 1) for r in items)
