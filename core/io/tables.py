"""Numbers from a visitor's CSV file, read in memory by rules the page states (`CSV_RULES`):
every number is read the one way the rules allow, or the file or column is refused with a
message that says where and why. Nothing is guessed.

    table = read_table(data)          # ValueError: the file cannot be read (says why)
    choice = table.choice(column)     # CsvChoice: the column's numbers, or why not
    values = choice.numbers()         # ValueError with that reason

Why by hand, with the csv module, and not pandas: pandas read `112,5` in a one-column file as
two fields and kept the last (5), read a quoted "118,2" as 1182 (thousands=","), shifted rows
with an extra field silently, and built a frame of every column of a 20 MB file on every rerun
(seconds, and hundreds of MB). Here a file is read once (the page keeps the `CsvTable` per
file, by the bytes' sha256), at most `MAX_ROWS` rows of at most `MAX_COLUMNS` columns, and only
the numbers of the columns that hold numbers are kept (float64, `MAX_ROWS` each at most).
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from core.limits import LIMITS
from core.text import listing, printable

#: A series gives one fewer change than values, and a trace is at most max_seq_len steps.
MAX_ROWS = LIMITS.max_seq_len + 1
#: More columns than this is not a table of series; refusing it early keeps a 20,000-column
#: header (290 KB) from costing seconds.
MAX_COLUMNS = 100
#: The separators a file may use, found from its first rows; None: one column, no separator.
DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma-separated", ";": "semicolon-separated", "\t": "tab-separated",
                   None: "one column"}
SNIFF_ROWS = 50
#: Cells that mean "no value" (an empty cell too): read as missing, refused if that column is
#: chosen, with the row.
MISSING = {"", "na", "n/a", "nan", "-nan", "+nan", "null", "none", "#n/a"}
INFINITE = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf,
            "+infinity": math.inf, "-infinity": -math.inf}
CELL_CHARS = 24  # how much of a cell a message quotes

_POINT_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_COMMA_NUMBER = re.compile(r"[+-]?(?:\d+(?:,\d*)?|,\d+)(?:[eE][+-]?\d+)?")
# One mark followed by exactly three digits, after one to three digits not starting with 0:
# "1,200" and "1.200" are 1.2 with that mark as the decimal mark, or 1200 with it as a
# thousands separator.
_GROUPED = re.compile(r"[+-]?[1-9]\d{0,2}[.,]\d{3}")
# Digits in groups of three with separators (and perhaps a decimal part): "1,200,000",
# "1.200,5", "1,200.5".
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:[.,]\d{3})+(?:[.,]\d+)?")
_FIRST_LINE = re.compile(r"[\r\n]*([^\r\n]*)")
_PLAIN_CHARS = re.compile(r"[0-9.eE+\- \t\n]*")
# A line of a column (cells joined by \n) that is a number with either mark.
_ANY_NUMBER = re.compile(r"(?m)^[ \t]*[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?[ \t]*$")
_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+\Z")

#: The rules, as the page states them under the uploader (and the README).
CSV_RULES = (
    "How a CSV is read: the first row names the columns. Columns are separated by commas, "
    "semicolons or tabs, whichever splits every row alike. Numbers are plain: 112, 112.5, -3, "
    "1e5. A semicolon- or tab-separated file, or a one-column file, may use a decimal comma "
    "instead (112,5). Thousands separators are not read. A number that could be read two ways "
    "(1,200 in a comma-separated file), a row with more or fewer fields than the first, and a "
    "name that is a number are refused, with the row, never guessed. UTF-8 or UTF-16 text; at "
    f"most {MAX_ROWS:,} rows of data and {MAX_COLUMNS} columns."
)


def _cell(text: str) -> str:
    """A cell as a message quotes it."""
    return f"“{printable(text, CELL_CHARS)}”"


def _row(index: int, line: int) -> str:
    """Data row `index` (0-based) in words, with the file's line (rows may span lines)."""
    return f"row {index + 1} of the data (line {line} of the file)"


@dataclass(frozen=True)
class CsvChoice:
    """What the visitor gave as CSV input: the chosen column's numbers, or why there are none
    (then `problem` says it). `key` says which file and column: a trace of it is kept under
    that, never under the numbers themselves."""

    key: tuple[str, int]  # (sha256 of the file, column index)
    name: str  # the column's name, printable and short
    values: tuple[float, ...] = ()
    problem: str = ""

    def numbers(self) -> list[float]:
        """The column's numbers; ValueError with the reason when it has none to give."""
        if self.problem:
            raise ValueError(self.problem)
        return list(self.values)


@dataclass(frozen=True)
class CsvTable:
    """An uploaded CSV as read: every column's name, the columns of numbers (`numeric`, in
    file order) with their values, why the other columns are not offered, and how the file
    was read. Holds at most MAX_COLUMNS x MAX_ROWS float64 values, never the file."""

    digest: str
    names: tuple[str, ...]  # every column, printable and short ("column 3" when unnamed)
    numeric: tuple[int, ...]  # indices of the columns of numbers
    rows: int
    delimiter: str | None
    values: dict[int, np.ndarray] = field(repr=False)  # float64; NaN where a cell is missing
    lines: dict[int, np.ndarray] = field(repr=False)  # the file's line of each data row
    left_out: tuple[str, ...] = ()  # "name: why", one per column not offered, refused first
    refused: int = 0  # how many of those hold numbers, refused for a cell or how they are written
    decimal_commas: tuple[int, ...] = ()  # numeric columns read with a decimal comma

    @property
    def reading(self) -> str:
        """How the file was read, in words ("semicolon-separated, 144 rows of data; decimal
        comma in “passengers”")."""
        said = f"{DELIMITER_NAMES[self.delimiter]}, {self.rows:,} rows of data"
        if self.decimal_commas:
            said += "; decimal comma in " + listing(f"“{self.names[i]}”"
                                                    for i in self.decimal_commas)
        return said

    def choice(self, column: int) -> CsvChoice:
        """Column `column`'s numbers, or why it cannot be used (a missing or non-finite value,
        with its row)."""
        key = (self.digest, int(column))
        if column not in self.values:
            return CsvChoice(key, "", problem="That column is not one of the CSV's columns of "
                                              "numbers.")
        name, array = self.names[column], self.values[column]
        bad = np.flatnonzero(~np.isfinite(array))
        if len(bad):  # never drop a cell quietly: the series would lose a month unseen
            first = int(bad[0])
            return CsvChoice(key, name, problem=(
                f"Column “{name}” has a missing or non-finite value (NaN or inf) in "
                f"{_row(first, int(self.lines[column][first]))}, {len(bad):,} in all (an empty "
                "cell is missing too): fill it in or remove the row."))
        return CsvChoice(key, name, tuple(array.tolist()))


def read_table(data: bytes) -> CsvTable:
    """Read an uploaded CSV by `CSV_RULES`. ValueError, with a message for the visitor, when
    the file cannot be read or has no column of numbers."""
    if not data:
        raise ValueError("The CSV file is empty.")
    if len(data) > LIMITS.max_upload_bytes:
        raise ValueError(f"The CSV file is larger than {LIMITS.max_upload_bytes // 2**20} MiB.")
    text = _decoded(data)
    delimiter = _delimiter(text)
    names, rows, lines = _rows(text, delimiter)
    values, kept_lines, left_out, commas = {}, {}, [], []
    for index, (name, cells) in enumerate(zip(names, zip(*rows))):
        column = _column(name, cells, lines, delimiter)
        if isinstance(column, str):
            if column:
                left_out.append(column)
            continue
        array, decimal_comma = column
        values[index], kept_lines[index] = array, lines
        if decimal_comma:
            commas.append(index)
    # Columns that hold numbers but were refused say the most: they come first.
    left_out.sort(key=lambda reason: isinstance(reason, _NotNumbers))
    refused = sum(not isinstance(reason, _NotNumbers) for reason in left_out)
    if not values:
        why = " ".join(left_out[:3]) + (f" (and {len(left_out) - 3} more)" if len(left_out) > 3
                                        else "")
        raise ValueError(f"The CSV has no column of numbers. Columns found: {listing(names)}."
                         + (f" {why}" if why else ""))
    return CsvTable(hashlib.sha256(data).hexdigest(), tuple(names), tuple(values), len(rows),
                    delimiter, values, kept_lines, tuple(map(str, left_out)), refused,
                    tuple(commas))


def csv_column_values(data: bytes, column: str | None = None) -> tuple[list[float], list[str]]:
    """(the numbers of the column named `column`, else of the last column of numbers; the
    names of the columns of numbers). ValueError, with a message, when there are none."""
    table = read_table(data)
    named = [i for i in table.numeric if table.names[i] == column]
    index = named[0] if named else table.numeric[-1]
    return table.choice(index).numbers(), [table.names[i] for i in table.numeric]


# ---------------------------------------------------------------------------------------------
# Reading


def _unreadable(why: str, encoding: bool = True) -> ValueError:
    """The file is not CSV text: why, and (for an encoding) what to do."""
    advice = (" It must be text in UTF-8 or UTF-16: save it as “CSV UTF-8” and upload it again."
              if encoding else "")
    return ValueError(f"That file could not be read as CSV: {why}{advice}")


def _decoded(data: bytes) -> str:
    """The file's text: UTF-8 (a byte-order mark or not), or UTF-16 with its byte-order mark.
    NUL characters are refused: they mean a binary file, or UTF-16 without its mark, and must
    never reach a widget."""
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _unreadable(f"{err}.") from None
    if "\x00" in text:
        raise _unreadable("it holds NUL characters (a binary file, or UTF-16 text without its "
                          "byte-order mark).")
    return text


def _lines(text: str):
    """The text's lines with their ends (\\n, \\r\\n or \\r), one at a time: a StringIO of a
    20 MB text copies it whole for every reader, and only the first rows are ever needed of a
    file that long."""
    for match in _LINE.finditer(text):
        yield match.group()


def _reader(text: str, delimiter: str | None):
    # No file holds NUL (refused above): as the delimiter, every line is one field, quotes
    # still read.
    return csv.reader(_lines(text), delimiter=delimiter or "\x00")


def _csv_error(err: csv.Error, line: int | None = None) -> ValueError:
    said = str(err)
    if "field limit" in said:
        said = f"a cell is longer than {csv.field_size_limit():,} characters"
    return _unreadable(printable(said, 200) + (f" (line {line})." if line else "."),
                       encoding=False)


def _delimiter(text: str) -> str | None:
    """The separator that splits the first rows alike into more than one field; None (one
    column) when none does and the first row holds none of them. Two that both split evenly
    are refused: reading by either could misplace every number."""
    even = []
    for delimiter in DELIMITERS:
        try:
            widths = {len(row) for row in islice(_reader(text, delimiter), SNIFF_ROWS) if row}
        except csv.Error:  # e.g. a whole wide row as one cell, over the cell limit: not this
            continue
        if len(widths) == 1 and widths.pop() > 1:
            even.append(delimiter)
    if len(even) > 1:
        shown = " and ".join(f"“{d}”" if d != "\t" else "tab" for d in even)
        raise ValueError(f"That CSV's rows split evenly on both {shown}, so which one separates "
                         "its columns is unclear. Use one separator only (a cell that holds "
                         "another goes in double quotes).")
    if even:
        return even[0]
    header = _FIRST_LINE.match(text).group(1)
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # the first of equals: the comma
    return best if counts[best] else None


def _rows(text: str, delimiter: str | None) -> tuple[list[str], list[list[str]], np.ndarray]:
    """(the column names, the data rows, each data row's line in the file). A blank line is a
    row of empty cells, blank lines at the end are not rows. Refuses a row of another width,
    a name that is a number, too many columns and too many rows."""
    reader = _reader(text, delimiter)
    rows, lines, blank = [], [], []
    names = None
    try:
        for row in reader:
            if names is None:
                if row:
                    names = _names(row)
                continue
            if not row:  # a blank line: a row of empty cells, unless nothing follows it
                blank.append(reader.line_num)
                continue
            for line in blank:
                rows.append([""] * len(names))
                lines.append(line)
            blank = []
            if len(row) != len(names):
                raise ValueError(_ragged(len(rows), reader.line_num, len(row), len(names),
                                         delimiter))
            rows.append(row)
            lines.append(reader.line_num)
            if len(rows) > MAX_ROWS:
                raise ValueError(
                    f"The CSV has more than {MAX_ROWS:,} rows of data; a series may have at "
                    f"most {MAX_ROWS:,} values (the sequence-length limit of "
                    f"{LIMITS.max_seq_len:,} steps, plus the first value). Keep its last "
                    f"{MAX_ROWS:,} rows, or fewer, and upload it again.")
    except csv.Error as err:
        raise _csv_error(err, reader.line_num) from None
    if names is None:
        raise ValueError("The CSV file holds only blank lines.")
    if not rows:
        raise ValueError(f"The CSV file has a header ({listing(names)}) but no rows of data.")
    return names, rows, np.asarray(lines, dtype=np.int64)


def _names(row: list[str]) -> list[str]:
    """The first row as column names: printable, cut short, "column k" when empty. Refuses
    too many columns, and a name that is a number (a file without a row of names would lose
    its first value to the names)."""
    if len(row) > MAX_COLUMNS:
        raise ValueError(f"The CSV has {len(row):,} columns; at most {MAX_COLUMNS} are read. Keep "
                         "the column of your series (and its dates, if you like) and upload "
                         "that.")
    numbers = [cell for cell in row if _number(cell.strip(), ",") is not None
               or _number(cell.strip(), ".") is not None]
    if numbers:
        raise ValueError(
            f"The first row of a CSV names its columns, but this one holds a number "
            f"({_cell(numbers[0])}). If the file has no row of names, add one at the top "
            "(passengers, say); a column named by a number, such as a year, needs a letter in "
            "its name (y1949).")
    return [printable(name) or f"column {k + 1}" for k, name in enumerate(row)]


def _ragged(index: int, line: int, fields: int, width: int, delimiter: str | None) -> str:
    said = (f"Row {index + 1} of the data (line {line} of the file) has {fields} "
            f"field{'s' if fields != 1 else ''}, but the first row names {width} column{'s' if width != 1 else ''}: which field "
            "belongs to which column is not guessed.")
    if delimiter == ",":
        said += (" If a number in it holds a comma (a decimal comma, a thousands separator), "
                 "write it without one (112.5, 1200), or separate the columns with semicolons.")
    return said


def _all_grouped(cells) -> bool:
    """Whether some cell holds a point and every cell that does looks like a thousands group
    ("1.200"): stops at the first that does not, which in most columns is the first."""
    seen = False
    for cell in cells:
        if "." in cell:
            if not _GROUPED.fullmatch(cell.strip()):
                return False
            seen = True
    return seen


class _NotNumbers(str):
    """Why a column is left out, when it is text (not numbers refused for how they are written)."""


def _number(cell: str, mark: str) -> float | None:
    """`cell` as a number written with the decimal mark `mark`, or None."""
    pattern = _POINT_NUMBER if mark == "." else _COMMA_NUMBER
    if not pattern.fullmatch(cell) or not any(ch.isdigit() for ch in cell):
        return None
    return float(cell.replace(",", ".")) if mark == "," else float(cell)


def _column(name: str, cells: tuple[str, ...], lines: np.ndarray, delimiter: str | None
            ) -> tuple[np.ndarray, bool] | str:
    """A column's numbers and whether they have a decimal comma; or why the column is not
    one of numbers ("" for an empty column, which needs no word)."""
    # The usual column, fast: only digits, points, exponents and signs, which float() reads
    # exactly as the rules do, or refuses ("1.2.3"), and then the rules say why.
    if (_PLAIN_CHARS.fullmatch("\n".join(cells)) and any(cells)
            and (delimiter == "," or not _all_grouped(cells))):
        try:
            values = np.array(cells if "" not in cells else [cell or "nan" for cell in cells],
                              dtype=np.float64)
        except ValueError:
            pass
        else:
            values.setflags(write=False)
            return values, False
    cells = [cell.strip() for cell in cells]
    lowered = [cell.lower() for cell in cells]
    present = [i for i, low in enumerate(lowered) if low not in MISSING and low not in INFINITE]
    if not present:
        return ""
    where = lambda i: _row(i, int(lines[i]))  # noqa: E731
    for i in present:
        if _number(cells[i], ".") is None and _number(cells[i], ",") is None:
            grouped = _THOUSANDS.fullmatch(cells[i])
            why = (f"“{name}”: {where(i)} holds {_cell(cells[i])}, which is not a number"
                   + (" (thousands separators are not read: write it without them)."
                      if grouped else "."))
            some_numbers = _ANY_NUMBER.search("\n".join(cells)) is not None
            return why if some_numbers else _NotNumbers(why)
    with_comma = [i for i in present if "," in cells[i]]
    with_point = [i for i in present if "." in cells[i]]
    if with_comma and delimiter == ",":  # only a quoted cell can hold one here
        i = with_comma[0]
        return (f"“{name}”: {where(i)} holds {_cell(cells[i])}; in a comma-separated file a "
                "comma inside a number could be a decimal comma or a thousands separator, so "
                "it is not read. Write it without one (118.2, or 1182), or separate the "
                "columns with semicolons to use a decimal comma.")
    if with_comma and with_point:
        i, j = with_point[0], with_comma[0]
        return (f"“{name}”: {where(i)} holds {_cell(cells[i])} and {where(j)} "
                f"{_cell(cells[j])}; one column must use one decimal mark, and thousands "
                "separators are not read.")
    mark = "," if with_comma else "."
    marked = with_comma or with_point
    if marked and delimiter != "," and all(_GROUPED.fullmatch(cells[i]) for i in marked):
        i = marked[0]
        return (f"“{name}”: {where(i)} holds {_cell(cells[i])}, which could be a decimal or a "
                "number with a thousands separator, and no other number in the column says "
                "which. Write it without a thousands separator (1200), or as a decimal without "
                "its trailing zero (1,2 or 1.2).")
    values = np.full(len(cells), np.nan)
    for i in present:
        values[i] = _number(cells[i], mark)
    for i, low in enumerate(lowered):
        if low in INFINITE:
            values[i] = INFINITE[low]
    values.setflags(write=False)
    return values, mark == ","
