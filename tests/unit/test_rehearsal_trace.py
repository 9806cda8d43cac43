"""The trace CSV format (issue 10): what reads, what each broken file says (file, line, column), and the round
trip write_trace -> read_trace."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from remediator.rehearsal.trace import (
    MAX_GAP_MINUTES,
    TraceError,
    TraceMinute,
    load_trace,
    read_trace,
    write_trace,
)

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
HEADER = "timestamp,incoming_bytes,incoming_records"


def minute(index: int) -> datetime:
    return T0 + timedelta(minutes=index)


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_trace_reads_one_minute_a_row_in_utc(tmp_path: Path) -> None:
    # Given a trace with the optional column, an offset, an exponent, a blank line and an empty consumer cell
    path = write(
        tmp_path,
        "timestamp , incoming_bytes,incoming_records,consumer_records_per_s\n"
        "2026-11-20T10:00:00Z,52428800,51200,900\n"
        "\n"
        "2026-11-20T11:01:00+01:00,1e3,5.5,\n",
    )
    # When it is read
    rows = read_trace(path)
    # Then each row is a minute in UTC, numbers as floats, an empty consumer cell is None
    assert rows == [
        TraceMinute(minute(0), 52_428_800.0, 51_200.0, 900.0),
        TraceMinute(minute(1), 1_000.0, 5.5, None),
    ]
    assert rows[1].timestamp.tzinfo is UTC


def test_columns_may_come_in_any_order_and_a_bom_is_ignored(tmp_path: Path) -> None:
    # Given a spreadsheet's export: a UTF-8 byte order mark and the columns reordered
    path = tmp_path / "trace.csv"
    path.write_bytes("\ufeffincoming_records,timestamp,incoming_bytes\r\n7,2026-11-20T10:00:00Z,100\r\n".encode())
    # When it is read / Then the values land in their columns
    assert read_trace(path) == [TraceMinute(minute(0), 100.0, 7.0)]


def test_missing_minutes_read_as_minutes_with_no_writes(tmp_path: Path) -> None:
    # Given a trace (as CloudWatch exports one) without rows for 10:01 and 10:02
    path = write(
        tmp_path,
        "timestamp,incoming_bytes,incoming_records,consumer_records_per_s\n"
        "2026-11-20T10:00:00Z,100,10,50\n"
        "2026-11-20T10:03:00Z,300,30,60\n",
    )
    # When it is read
    loaded = load_trace(path)
    # Then those minutes are there, with zero bytes and records and the consumers' rate of the row before
    assert loaded.rows == [
        TraceMinute(minute(0), 100.0, 10.0, 50.0),
        TraceMinute(minute(1), 0.0, 0.0, 50.0),
        TraceMinute(minute(2), 0.0, 0.0, 50.0),
        TraceMinute(minute(3), 300.0, 30.0, 60.0),
    ]
    assert loaded.filled == [minute(1), minute(2)]
    assert read_trace(path) == loaded.rows


def test_a_gap_of_exactly_the_limit_is_filled(tmp_path: Path) -> None:
    # Given two rows MAX_GAP_MINUTES apart (the limit of missing minutes)
    last = minute(MAX_GAP_MINUTES + 1).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = write(tmp_path, f"{HEADER}\n2026-11-20T10:00:00Z,1,1\n{last},2,2\n")
    # When it is read / Then every missing minute is a row
    assert len(read_trace(path)) == MAX_GAP_MINUTES + 2


ROW = "2026-11-20T10:00:00Z,100,10"
# (file text, message after "<path>:"): each error names the line and the column.
READ_ERRORS = [
    pytest.param("", "1: the file is empty; expected the header timestamp,incoming_bytes,incoming_records", id="empty"),
    pytest.param(f"{HEADER}\n", " the trace has a header but no rows; it needs at least one minute", id="no-rows"),
    pytest.param(f"{HEADER}\n\n\n", " the trace has a header but no rows; it needs at least one minute", id="blank"),
    pytest.param(
        f"{HEADER},shards\n{ROW},2\n",
        "1: unknown column 'shards'; the columns are timestamp, incoming_bytes, incoming_records and optionally"
        " consumer_records_per_s",
        id="unknown-column",
    ),
    pytest.param(
        f"{HEADER},shards,Region\n{ROW},2,x\n",
        "1: unknown columns 'shards', 'Region'; the columns are timestamp, incoming_bytes, incoming_records and"
        " optionally consumer_records_per_s",
        id="unknown-columns",
    ),
    pytest.param("timestamp,incoming_bytes\n2026-11-20T10:00:00Z,1\n", "1: missing column incoming_records", id="miss"),
    pytest.param("timestamp\n2026-11-20T10:00:00Z\n", "1: missing columns incoming_bytes, incoming_records", id="m2"),
    pytest.param(f"{HEADER},timestamp\n{ROW},x\n", "1: column timestamp appear twice", id="twice"),
    pytest.param(
        f"{HEADER}\n{ROW}\n2026-11-20T10:01:00Z,100\n",
        "3: expected 3 values (timestamp,incoming_bytes,incoming_records), found 2",
        id="short-row",
    ),
    pytest.param(
        f'{HEADER}\n{ROW}\n2026-11-20T10:01:00Z,"1"2,10\n', "3: not valid CSV: ',' expected after '\"'", id="quote"
    ),
    pytest.param(
        f"{HEADER}\n{ROW}\n2026-11-20T10:01:00Z,abc,10\n", "3: incoming_bytes: 'abc' is not a number", id="nan-text"
    ),
    pytest.param(
        f"{HEADER}\n{ROW}\n2026-11-20T10:01:00Z,100,ten\n", "3: incoming_records: 'ten' is not a number", id="records"
    ),
    pytest.param(
        f"{HEADER}\n2026-11-20T10:00:00Z,,10\n", "2: incoming_bytes: empty; a number is required", id="empty-cell"
    ),
    pytest.param(
        f"{HEADER}\n2026-11-20T10:00:00Z,-1,10\n", "2: incoming_bytes: '-1' is negative; it must be 0 or more", id="neg"
    ),
    pytest.param(f"{HEADER}\n2026-11-20T10:00:00Z,nan,10\n", "2: incoming_bytes: 'nan' is not a finite number", id="n"),
    pytest.param(
        f"{HEADER}\n2026-11-20T10:00:00Z,1,inf\n", "2: incoming_records: 'inf' is not a finite number", id="inf"
    ),
    pytest.param(
        f"{HEADER},consumer_records_per_s\n{ROW},fast\n",
        "2: consumer_records_per_s: 'fast' is not a number",
        id="consumer-text",
    ),
    pytest.param(
        f"{HEADER},consumer_records_per_s\n{ROW},-5\n",
        "2: consumer_records_per_s: '-5' is negative; it must be 0 or more",
        id="consumer-negative",
    ),
    pytest.param(
        f"{HEADER}\nyesterday,1,1\n",
        "2: timestamp: 'yesterday' is not an ISO 8601 timestamp (e.g. 2026-11-20T10:00:00Z)",
        id="not-a-time",
    ),
    pytest.param(
        f"{HEADER}\n2026-11-20T10:00:00,1,1\n",
        "2: timestamp: '2026-11-20T10:00:00' has no time zone; add Z for UTC or an offset such as +01:00",
        id="naive",
    ),
    pytest.param(
        f"{HEADER}\n2026-11-20T10:00:30Z,1,1\n",
        "2: timestamp: '2026-11-20T10:00:30Z' is not the start of a minute (seconds must be 0)",
        id="seconds",
    ),
    pytest.param(
        f"{HEADER}\n{ROW}\n{ROW}\n",
        "3: timestamp: 2026-11-20T10:00:00Z is not after 2026-11-20T10:00:00Z (line 2); rows must go forward one"
        " minute at a time",
        id="duplicate",
    ),
    pytest.param(
        f"{HEADER}\n{ROW}\n\n2026-11-20T11:00:00+02:00,1,1\n",
        "4: timestamp: 2026-11-20T09:00:00Z is not after 2026-11-20T10:00:00Z (line 2); rows must go forward one"
        " minute at a time",
        id="backwards",
    ),
    pytest.param(
        f"{HEADER}\n{ROW}\n2026-11-21T10:02:00Z,1,1\n",
        f"3: timestamp: 2026-11-21T10:02:00Z leaves {MAX_GAP_MINUTES + 1} minutes missing after 2026-11-20T10:00:00Z"
        f" (line 2); at most {MAX_GAP_MINUTES} missing minutes are read as minutes with no writes: check the date,"
        " or write the rows",
        id="gap-too-long",
    ),
]


@pytest.mark.parametrize(("text", "message"), READ_ERRORS)
def test_each_broken_trace_names_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    # Given a trace file that breaks one rule
    path = write(tmp_path, text)
    # When it is read / Then the error names the file, the line and the column
    with pytest.raises(TraceError) as raised:
        read_trace(path)
    assert str(raised.value) == f"{path}:{message}"


def test_a_file_that_is_not_there_or_not_text_is_a_trace_error(tmp_path: Path) -> None:
    # Given no file, and a file that is not UTF-8 text
    binary = tmp_path / "trace.bin"
    binary.write_bytes(b"timestamp,incoming_bytes,incoming_records\n\xff\xfe\x00,1,1\n")
    # When they are read / Then each is a TraceError naming the file
    with pytest.raises(TraceError, match=r"nowhere\.csv: cannot read the trace: No such file"):
        read_trace(tmp_path / "nowhere.csv")
    with pytest.raises(TraceError, match=r"trace\.bin: not a UTF-8 text file"):
        read_trace(binary)


# --- write_trace ----------------------------------------------------------------------------------------------


def test_write_trace_writes_the_format_with_the_consumer_column_only_when_used(tmp_path: Path) -> None:
    # Given rows without consumer rates, and rows with one
    plain = [TraceMinute(minute(0), 1024.0, 2.0), TraceMinute(minute(1), 0.5, 0.0)]
    consumers = [TraceMinute(minute(0), 1.0, 1.0, 10.0), TraceMinute(minute(1), 1.0, 1.0)]
    # When they are written
    write_trace(tmp_path / "plain.csv", plain)
    write_trace(tmp_path / "consumers.csv", consumers)
    # Then whole numbers are written as integers, the optional column only if a row has it, an absent rate empty
    assert (tmp_path / "plain.csv").read_text() == (
        f"{HEADER}\n2026-11-20T10:00:00Z,1024,2\n2026-11-20T10:01:00Z,0.5,0\n"
    )
    assert (tmp_path / "consumers.csv").read_text() == (
        f"{HEADER},consumer_records_per_s\n2026-11-20T10:00:00Z,1,1,10\n2026-11-20T10:01:00Z,1,1,\n"
    )


WRITE_ERRORS = [
    pytest.param([], "no rows to write", id="empty"),
    pytest.param([TraceMinute(datetime(2026, 11, 20, 10, 0), 1.0, 1.0)], "has no time zone", id="naive"),
    pytest.param([TraceMinute(minute(0) + timedelta(seconds=1), 1.0, 1.0)], "not the start of a minute", id="sec"),
    pytest.param(
        [TraceMinute(minute(0), 1.0, 1.0), TraceMinute(minute(2), 1.0, 1.0)], "is not a minute after", id="gap"
    ),
    pytest.param(
        [TraceMinute(minute(1), 1.0, 1.0), TraceMinute(minute(0), 1.0, 1.0)], "is not a minute after", id="back"
    ),
    pytest.param([TraceMinute(minute(0), -1.0, 1.0)], "incoming_bytes -1.0 must be a finite", id="negative"),
    pytest.param([TraceMinute(minute(0), 1.0, math.inf)], "incoming_records inf must be a finite", id="inf"),
    pytest.param([TraceMinute(minute(0), 1.0, 1.0, math.nan)], "consumer_records_per_s nan must be", id="nan"),
]


@pytest.mark.parametrize(("rows", "message"), WRITE_ERRORS)
def test_write_trace_refuses_rows_read_trace_would_refuse(
    tmp_path: Path, rows: list[TraceMinute], message: str
) -> None:
    # Given rows that break the format / When they are written / Then nothing is written and the error says why
    path = tmp_path / "trace.csv"
    with pytest.raises(ValueError, match=message):
        write_trace(path, rows)
    assert not path.exists()


numbers = st.one_of(
    st.integers(0, 10**12).map(float),
    st.floats(min_value=0, max_value=1e15, allow_nan=False, allow_infinity=False),
)


@st.composite
def traces(draw: st.DrawFn) -> list[TraceMinute]:
    start = draw(st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1))).replace(second=0, microsecond=0)
    # Any zone: read_trace gives UTC back, the same instant.
    zone = draw(st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]))
    first = start.replace(tzinfo=zone)
    consumers = draw(st.booleans())
    count = draw(st.integers(1, 30))
    return [
        TraceMinute(
            first + timedelta(minutes=index),
            draw(numbers),
            draw(numbers),
            draw(st.one_of(st.none(), numbers)) if consumers else None,
        )
        for index in range(count)
    ]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=traces())
def test_what_write_trace_writes_read_trace_reads_back_equal(tmp_path: Path, rows: list[TraceMinute]) -> None:
    # Given any valid trace / When it is written and read back / Then every row is equal, exactly
    path = tmp_path / "round-trip.csv"
    write_trace(path, rows)
    assert read_trace(path) == rows
