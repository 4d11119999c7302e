"""Reading small text CSV tables (manifests, label files) with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dbm_lightning.errors import DataFormatError


def read_text_csv(path: Path, what: str) -> pd.DataFrame:
    """All cells of the CSV at ``path`` as stripped-header strings (empty cells stay ``""``).

    ``what`` names the kind of file in errors ("manifest", "label file"): a missing, empty or
    unparsable file raises :class:`DataFormatError` naming ``path``.
    """
    if not path.is_file():
        raise DataFormatError(path, f"{what} not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataFormatError(path, f"{what} is empty") from None
    except Exception as exc:
        raise DataFormatError(path, f"cannot parse {what} CSV ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df
