"""Trace files: what producers offered a stream, one row per minute.

The format (a CSV file, UTF-8, with a header; columns in any order):

    timestamp,incoming_bytes,incoming_records,consumer_records_per_s
    2026-11-20T10:00:00Z,52428800,51200,900
    2026-11-20T10:01:00Z,60817408,59392,

- timestamp: ISO 8601 with a time zone (``Z`` or an offset such as ``+01:00``), the start of a minute; read as UTC.
  A timestamp without a zone is an error: the same file would mean different minutes on different machines.
- incoming_bytes, incoming_records: what producers offered during that minute (a sum over the minute, not a rate),
  non-negative numbers (``1e6`` is accepted).
- consumer_records_per_s (optional column): how many records per second the consumers can process that minute;
  an empty cell means "as many as they may read".

Rows must go forward in time. A minute missing between two rows reads as a minute with no writes (zero bytes and
zero records; the consumer rate of the row before), because that is what a missing CloudWatch datapoint means: a
trace exported from CloudWatch has no row for a minute in which nothing was written. A gap longer than
MAX_GAP_MINUTES is an error rather than a day of silence: it is much more likely a mistyped timestamp. A row that
repeats or goes back in time is an error, as is any column the format does not know, and a file with no rows.

Each error is a TraceError whose message names the file, the line and the column, e.g.
``trace.csv:14: incoming_bytes: 'abc' is not a number``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

TIMESTAMP = "timestamp"
INCOMING_BYTES = "incoming_bytes"
INCOMING_RECORDS = "incoming_records"
CONSUMER_RECORDS_PER_S = "consumer_records_per_s"
REQUIRED_COLUMNS = (TIMESTAMP, INCOMING_BYTES, INCOMING_RECORDS)
OPTIONAL_COLUMNS = (CONSUMER_RECORDS_PER_S,)
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

MINUTE = timedelta(minutes=1)
# The longest run of missing minutes read as zeros; a longer gap is an error (a wrong date, most likely).
MAX_GAP_MINUTES = 24 * 60


@dataclass(frozen=True)
class TraceMinute:
    """One minute of a trace: the bytes and records producers offered during it (sums over the minute).

    timestamp is the minute's start, in UTC. consumer_records_per_s is how many records per second the consumers
    process that minute; None means they read all they may."""

    timestamp: datetime
    incoming_bytes: float
    incoming_records: float
    consumer_records_per_s: float | None = None


class _CsvReader(Protocol):
    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


class TraceError(ValueError):
    """A trace file that cannot be read; the message names the file, the line and the column."""


@dataclass(frozen=True)
class LoadedTrace:
    """A trace as read, with the minutes the file did not have (read as minutes with no writes)."""

    rows: list[TraceMinute]
    filled: list[datetime] = field(default_factory=list)


def read_trace(path: str | os.PathLike[str]) -> list[TraceMinute]:
    """The trace in a CSV file, one TraceMinute per minute (missing minutes filled with zeros); TraceError if the
    file breaks the format."""
    return load_trace(path).rows


def load_trace(path: str | os.PathLike[str]) -> LoadedTrace:
    """read_trace, also telling which minutes the file lacked (so a caller can say how many were filled)."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            try:
                return _parse(name, reader)
            except csv.Error as error:
                raise TraceError(f"{name}:{reader.line_num}: not valid CSV: {error}") from error
    except OSError as error:
        raise TraceError(f"{name}: cannot read the trace: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise TraceError(f"{name}: not a UTF-8 text file ({error.reason} at byte {error.start})") from error


def _parse(name: str, reader: _CsvReader) -> LoadedTrace:
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        raise TraceError(f"{name}:1: the file is empty; expected the header {','.join(REQUIRED_COLUMNS)}")
    columns = [cell.strip() for cell in header]
    _check_header(name, columns)
    rows: list[TraceMinute] = []
    filled: list[datetime] = []
    previous_line = 0
    for cells in reader:
        line = reader.line_num  # the row's last physical line (a row has one unless a cell holds a line break)
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        if len(cells) != len(columns):
            raise TraceError(f"{name}:{line}: expected {len(columns)} values ({','.join(columns)}), found {len(cells)}")
        values = {column: cell.strip() for column, cell in zip(columns, cells, strict=True)}
        row = TraceMinute(
            timestamp=_timestamp(name, line, values[TIMESTAMP]),
            incoming_bytes=_number(name, line, INCOMING_BYTES, values[INCOMING_BYTES]),
            incoming_records=_number(name, line, INCOMING_RECORDS, values[INCOMING_RECORDS]),
            consumer_records_per_s=_optional_number(name, line, CONSUMER_RECORDS_PER_S, values),
        )
        if rows:
            last = rows[-1]
            if row.timestamp <= last.timestamp:
                raise TraceError(
                    f"{name}:{line}: {TIMESTAMP}: {_iso(row.timestamp)} is not after {_iso(last.timestamp)}"
                    f" (line {previous_line}); rows must go forward one minute at a time"
                )
            missing = (row.timestamp - last.timestamp) // MINUTE - 1
            if missing > MAX_GAP_MINUTES:
                raise TraceError(
                    f"{name}:{line}: {TIMESTAMP}: {_iso(row.timestamp)} leaves {missing} minutes missing after"
                    f" {_iso(last.timestamp)} (line {previous_line}); at most {MAX_GAP_MINUTES} missing minutes are"
                    " read as minutes with no writes: check the date, or write the rows"
                )
            for step in range(1, missing + 1):
                moment = last.timestamp + step * MINUTE
                rows.append(TraceMinute(moment, 0.0, 0.0, last.consumer_records_per_s))
                filled.append(moment)
        rows.append(row)
        previous_line = line
    if not rows:
        raise TraceError(f"{name}: the trace has a header but no rows; it needs at least one minute")
    return LoadedTrace(rows, filled)


def _check_header(name: str, columns: list[str]) -> None:
    unknown = [column for column in columns if column not in COLUMNS]
    if unknown:
        raise TraceError(
            f"{name}:1: unknown column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))};"
            f" the columns are {', '.join(REQUIRED_COLUMNS)} and optionally {', '.join(OPTIONAL_COLUMNS)}"
        )
    repeated = sorted({column for column in columns if columns.count(column) > 1})
    if repeated:
        raise TraceError(f"{name}:1: column{'s' if len(repeated) > 1 else ''} {', '.join(repeated)} appear twice")
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise TraceError(f"{name}:1: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")


def _timestamp(name: str, line: int, text: str) -> datetime:
    where = f"{name}:{line}: {TIMESTAMP}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TraceError(f"{where}: {text!r} is not an ISO 8601 timestamp (e.g. 2026-11-20T10:00:00Z)") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise TraceError(f"{where}: {text!r} has no time zone; add Z for UTC or an offset such as +01:00")
    if moment.second or moment.microsecond:
        raise TraceError(f"{where}: {text!r} is not the start of a minute (seconds must be 0)")
    return moment.astimezone(UTC)


def _number(name: str, line: int, column: str, text: str) -> float:
    where = f"{name}:{line}: {column}"
    if not text:
        raise TraceError(f"{where}: empty; a number is required")
    try:
        value = float(text)
    except ValueError:
        raise TraceError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise TraceError(f"{where}: {text!r} is not a finite number")
    if value < 0:
        raise TraceError(f"{where}: {text!r} is negative; it must be 0 or more")
    return value + 0.0  # -0.0 reads as 0.0


def _optional_number(name: str, line: int, column: str, values: dict[str, str]) -> float | None:
    text = values.get(column, "")
    return None if text == "" else _number(name, line, column, text)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _format(value: float) -> str:
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)  # the shortest text that reads back as the same float


def write_trace(path: str | os.PathLike[str], rows: Sequence[TraceMinute]) -> None:
    """Write rows in the trace format (read_trace reads them back equal). The consumer_records_per_s column is
    written only if a row has a value. ValueError for rows read_trace would refuse: none, a timestamp without a
    zone or not at a minute's start, minutes that do not follow each other one by one, or a negative or
    non-finite number."""
    name = os.fspath(path)
    if not rows:
        raise ValueError(f"{name}: no rows to write; a trace needs at least one minute")
    for index, row in enumerate(rows):
        moment = row.timestamp
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name}: row {index}: timestamp {moment.isoformat()} has no time zone")
        if moment.second or moment.microsecond:
            raise ValueError(f"{name}: row {index}: timestamp {moment.isoformat()} is not the start of a minute")
        if index and moment - rows[index - 1].timestamp != MINUTE:
            raise ValueError(f"{name}: row {index}: timestamp {_iso(moment)} is not a minute after the row before")
        for column in COLUMNS[1:]:
            value = getattr(row, column)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"{name}: row {index}: {column} {value!r} must be a finite number, 0 or more")
    with_consumers = any(row.consumer_records_per_s is not None for row in rows)
    columns = COLUMNS if with_consumers else REQUIRED_COLUMNS
    with open(name, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            cells = [_iso(row.timestamp), _format(float(row.incoming_bytes)), _format(float(row.incoming_records))]
            if with_consumers:
                rate = row.consumer_records_per_s
                cells.append("" if rate is None else _format(float(rate)))
            writer.writerow(cells)
