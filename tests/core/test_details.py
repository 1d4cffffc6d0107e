"""The details users hit (issue 2), each through process_batch, the one path production uses."""

from __future__ import annotations

import datetime as dt
import json

import eventpipe_core as ec
import pytest

TS = "2026-03-01T12:00:00Z"


def line(event_id: str = "e1", **extra: object) -> str:
    return json.dumps({"event_id": event_id, "event_type": "click", "timestamp": TS, **extra})


def rows(data: bytes | str, **kwargs: object) -> list[dict[str, object]]:
    result = ec.process_batch(data, **kwargs)  # type: ignore[arg-type]
    return result.records.to_pylist()  # type: ignore[no-any-return]


def test_crlf_line_endings() -> None:
    result = ec.process_batch(f"{line('a')}\r\n{line('b')}\r\n".encode())
    assert result.records.column("event_id").to_pylist() == ["a", "b"]
    assert result.rejects == []


def test_surrounding_whitespace_and_blank_lines() -> None:
    result = ec.process_batch(f"  \t{line('a')}   \n\n   \n\t{line('b')}\t\n".encode())
    assert result.records.column("source_line").to_pylist() == [1, 4]
    assert result.received == 2


def test_unicode_escapes_and_surrogate_pairs() -> None:
    data = '{"event_id": "\\u00e9\\ud83d\\ude00", "event_type": "c\\"q", "timestamp": "' + TS + '"}\n'
    [row] = rows(data.encode())
    assert row["event_id"] == "é😀"
    assert row["event_type"] == 'c"q'


def test_lone_surrogate_is_a_reject_not_a_crash() -> None:
    data = '{"event_id": "\\ud800", "event_type": "c", "timestamp": "' + TS + '"}\n'
    result = ec.process_batch(data.encode())
    assert result.records.num_rows == 0
    assert [r.line for r in result.rejects] == [1]


def test_raw_multibyte_utf8() -> None:
    data = line("日本語-ü-😀", user_id="ユーザー", properties={"名前": "值"})
    data = json.dumps(json.loads(data), ensure_ascii=False)
    [row] = rows(data.encode("utf-8"))
    assert row["event_id"] == "日本語-ü-😀"
    assert row["user_id"] == "ユーザー"
    assert json.loads(str(row["properties"])) == {"名前": "值"}


def test_invalid_utf8_line_is_a_reject() -> None:
    data = line("a").encode() + b"\n" + b'{"event_id": "\xff\xfe"}\n'
    result = ec.process_batch(data)
    assert result.records.num_rows == 1
    assert result.rejects[0].line == 2
    assert "UTF-8" in result.rejects[0].reason


@pytest.mark.parametrize(
    ("timestamp", "date", "hour"),
    [
        ("2026-01-01T00:30:00+01:00", dt.date(2025, 12, 31), 23),
        ("2025-12-31T23:30:00-01:00", dt.date(2026, 1, 1), 0),
        ("2024-03-01T05:00:00+09:30", dt.date(2024, 2, 29), 19),
    ],
)
def test_offsets_move_events_across_midnight(timestamp: str, date: dt.date, hour: int) -> None:
    [row] = rows(line(timestamp=timestamp).encode())
    assert row["event_date"] == date
    assert row["event_hour"] == hour


@pytest.mark.parametrize(
    ("fraction", "micros"),
    [("", 0), (".1", 100_000), (".12", 120_000), (".123", 123_000), (".1234", 123_400), (".12345", 123_450),
     (".123456", 123_456), (".1234567", 123_456), (".12345678", 123_456), (".123456789", 123_456)],
)
def test_zero_to_nine_fraction_digits_truncate(fraction: str, micros: int) -> None:
    [row] = rows(line(timestamp=f"2026-03-01T12:00:00{fraction}Z").encode())
    ts = row["event_ts"]
    assert isinstance(ts, dt.datetime)
    assert ts.microsecond == micros


@pytest.mark.parametrize(
    "timestamp",
    ["2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T25:00:00Z", "2025-02-29T00:00:00Z",
     "2026-01-01T00:00:00.1234567890Z", "2026-01-01T00:00:00+24:00", "not a time", "2026-01-01"],
)
def test_impossible_dates_are_rejected(timestamp: str) -> None:
    result = ec.process_batch(line(timestamp=timestamp).encode())
    assert result.records.num_rows == 0
    [reject] = result.rejects
    assert [(v.field, v.rule) for v in reject.violations] == [("timestamp", "timestamp")]
    assert timestamp in reject.reason


def test_timestamp_without_offset_is_rejected() -> None:
    result = ec.process_batch(line(timestamp="2026-03-01T12:00:00").encode())
    [reject] = result.rejects
    assert "offset" in reject.reason and "unknown" in reject.reason


def test_json_lines_that_are_not_objects() -> None:
    data = b'[1, 2]\n"text"\n42\nnull\n' + line().encode() + b"\n"
    result = ec.process_batch(data)
    assert [r.line for r in result.rejects] == [1, 2, 3, 4]
    assert all(r.violations[0].rule == "json" for r in result.rejects)
    assert result.records.num_rows == 1


def test_event_id_of_the_wrong_type() -> None:
    result = ec.process_batch(line(event_id=12345).encode())  # type: ignore[arg-type]
    [reject] = result.rejects
    [v] = reject.violations
    assert (v.field, v.rule, v.value) == ("event_id", "type", 12345)


def test_a_one_megabyte_line() -> None:
    blob = "x" * (1 << 20)
    [row] = rows(line(properties={"blob": blob}).encode())
    assert json.loads(str(row["properties"]))["blob"] == blob


def test_integers_above_2_53_survive_exactly() -> None:
    big = 2**53 + 1
    huge = 123456789012345678901234567890
    data = f'{{"event_id": "a", "event_type": "t", "timestamp": "{TS}", "properties": {{"n": {big}, "m": {huge}}}}}'
    [row] = rows(data.encode())
    assert row["properties"] == f'{{"n":{big},"m":{huge}}}'
    assert json.loads(str(row["properties"])) == {"n": big, "m": huge}
    assert ec.parse_json(data.encode())[0]["properties"] == {"n": big, "m": huge}
    [t] = ec.transform_batch([{"event_id": "a", "event_type": "t", "timestamp": TS, "properties": {"m": huge}}])
    assert t["properties"] == f'{{"m":{huge}}}'


def test_duplicates_first_valid_occurrence_wins() -> None:
    data = "\n".join(
        [
            line("a", event_type=None),  # invalid: does not count for dedupe
            line("a", user_id="first"),
            line("a", user_id="second"),
            line("b"),
        ]
    )
    result = ec.process_batch(data.encode())
    assert result.records.column("user_id").to_pylist() == ["first", None]
    assert result.duplicates == 1
    assert [r.line for r in result.rejects] == [1]
    assert result.received == 4
    kept = ec.deduplicate([{"event_id": "a", "user_id": 1}, {"event_id": "a", "user_id": 2}, {"user_id": 3}])
    assert [e["user_id"] for e in kept] == [1, 3]


def test_job_id_source_line_and_raw() -> None:
    data = "\n\n" + line("a", _job_id="from-event") + "\n" + line("b") + "\n"
    result = ec.process_batch(data.encode(), include_raw=True)
    assert result.records.column("job_id").to_pylist() == ["from-event", None]
    assert result.records.column("source_line").to_pylist() == [3, 4]
    raw = result.records.column("raw").to_pylist()
    assert json.loads(raw[0]) == json.loads(line("a", _job_id="from-event"))
    assert " " not in raw[1]
    result = ec.process_batch(data.encode(), include_raw=True, job_id="job-7")
    assert result.records.column("job_id").to_pylist() == ["job-7", "job-7"]
    assert [json.loads(r)["_job_id"] for r in result.records.column("raw").to_pylist()] == ["job-7", "job-7"]
    assert "raw" not in ec.process_batch(data.encode()).records.column_names


def test_json_array_batches_number_elements() -> None:
    data = "[" + ",".join([line("a"), "17", line("b")]) + "]"
    result = ec.process_batch(data.encode(), format="json")
    assert result.records.column("source_line").to_pylist() == [1, 3]
    assert [(r.line, r.raw) for r in result.rejects] == [(2, "17")]


def test_csv_batches() -> None:
    data = (
        "event_id,event_type,timestamp,properties,schema_version\r\n"
        'a,click,2026-03-01T12:00:00+02:00,"{""n"": 1}",2\r\n'
        "b,click,yesterday,,\r\n"
        "c,click\r\n"
    )
    result = ec.process_batch(data.encode(), format="csv")
    [row] = result.records.to_pylist()
    assert row["event_hour"] == 10 and row["schema_version"] == 2 and row["properties"] == '{"n":1}'
    assert [(r.line, r.raw) for r in result.rejects] == [(3, "b,click,yesterday,,"), (4, "c,click")]


def test_records_are_handed_over_as_arrow() -> None:
    import pyarrow as pa

    result = ec.process_batch(line().encode())
    assert isinstance(result.records, pa.Table)
    assert result.records is result.records
    assert pa.table(result).equals(result.records)
    assert result.rejects[0:0] == []
