"""Numbers from a user's CSV file, read in memory with pandas (imported only when a file comes:
0.3 s off every cold start)."""

from __future__ import annotations

import io

from core.limits import LIMITS


def csv_column_values(data: bytes, column: str | None = None) -> tuple[list[float], list[str]]:
    """Numbers from one column of an uploaded CSV: (values, column names). ValueError if none."""
    if not data:
        raise ValueError("The CSV file is empty.")
    if len(data) > LIMITS.max_upload_bytes:
        raise ValueError(f"The CSV file is larger than {LIMITS.max_upload_bytes // 2**20} MiB.")
    import pandas as pd  # here, not at the top (see the module doc)

    try:  # thousands=",": Excel writes 1200 as "1,200"
        frame = pd.read_csv(io.BytesIO(data), thousands=",")
    except Exception as err:  # pandas raises many types for malformed files
        raise ValueError(f"That file could not be read as CSV: {str(err).splitlines()[0]}") from None
    if frame.empty:
        raise ValueError("The CSV file has a header ("
                         + ", ".join(map(str, frame.columns[:10])) + ") but no rows of data.")
    numeric = [c for c in frame.columns  # an all-empty column (a trailing comma) is not one
               if pd.api.types.is_numeric_dtype(frame[c]) and frame[c].notna().any()]
    if not numeric:
        raise ValueError("The CSV has no column of numbers. Columns found: "
                         + ", ".join(map(str, frame.columns[:10])))
    col = column if column in numeric else numeric[-1]
    missing = frame[col].isna().to_numpy().nonzero()[0]
    if len(missing):  # never drop a cell quietly: the series would lose a month unseen
        raise ValueError(f"Column {str(col)!r} has a missing value (an empty cell or NaN) in row "
                         f"{int(missing[0]) + 1} of the data ({len(missing)} missing in all): "
                         "fill it in or remove the row.")
    return frame[col].astype(float).tolist(), [str(c) for c in numeric]
