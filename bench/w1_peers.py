"""The W1 job done by each peer, the idiomatic way, with the same rules as the project's job.

Every job reads the NDJSON file, rejects lines that are not JSON objects or break a rule (event_id a string,
event_type in the enum, timestamp RFC 3339 with an offset, amount a number in [0, 1e6]), transforms (UTC
microseconds, event_date, event_hour, properties as JSON text, amount and currency columns), deduplicates on
event_id keeping the first valid event, and writes one ZSTD Parquet file. Each returns (rows, rejects).
"""

from __future__ import annotations

import datetime as dt
import json
import mmap
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.w1_data import EVENT_TYPES, SCHEMA

TYPES = frozenset(EVENT_TYPES)
RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
COLUMNS = ["event_id", "event_type", "user_id", "session_id", "event_ts", "event_date", "event_hour", "properties",
           "schema_version", "amount", "currency"]

# The Iceberg schema of the file the project's job writes (same columns as every peer's file).
ICEBERG_SCHEMA = json.dumps({"type": "struct", "schema-id": 0, "fields": [
    {"id": 1, "name": "event_id", "required": True, "type": "string"},
    {"id": 2, "name": "event_type", "required": True, "type": "string"},
    {"id": 6, "name": "user_id", "required": False, "type": "string"},
    {"id": 7, "name": "session_id", "required": False, "type": "string"},
    {"id": 3, "name": "event_ts", "required": True, "type": "timestamptz"},
    {"id": 4, "name": "event_date", "required": True, "type": "date"},
    {"id": 5, "name": "event_hour", "required": True, "type": "int"},
    {"id": 8, "name": "properties", "required": False, "type": "string"},
    {"id": 9, "name": "schema_version", "required": True, "type": "int"},
    {"id": 100, "name": "amount", "required": False, "type": "double"},
    {"id": 101, "name": "currency", "required": False, "type": "string"},
]})


def _arrow_schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("event_id", pa.string()), ("event_type", pa.string()), ("user_id", pa.string()),
        ("session_id", pa.string()), ("event_ts", pa.timestamp("us", tz="UTC")), ("event_date", pa.date32()),
        ("event_hour", pa.int32()), ("properties", pa.string()), ("schema_version", pa.int32()),
        ("amount", pa.float64()), ("currency", pa.string()),
    ])


def _parse_ts(ts: object) -> int | None:
    """UTC microseconds of an RFC 3339 timestamp with offset, else None (nanoseconds truncate)."""
    if not isinstance(ts, str) or not RFC3339.fullmatch(ts):
        return None
    text = ts
    dot = text.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        text = text[:dot] + text[dot:end][:7].ljust(7, "0") + text[end:]
    try:
        t = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    delta = t - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_timestamps(ts: Any) -> Any:
    """RFC 3339 strings (an Arrow string array) to UTC microsecond timestamps, null where malformed or impossible.
    Nanosecond fractions truncate to microseconds: the fraction is cut to 6 digits before parsing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    well_formed = pc.fill_null(pc.match_substring_regex(ts, RFC3339.pattern + "$"), False)
    cut = pc.replace_substring_regex(ts, r"(\.\d{6})\d+", r"\1")
    candidates = pc.if_else(well_formed, cut, pa.scalar(None, pa.string()))
    try:
        return pc.cast(candidates, pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:  # an impossible date somewhere: parse those strings one by one
        return pa.array([None if v is None else _parse_ts(v) for v in candidates.to_pylist()],
                        pa.int64()).cast(pa.timestamp("us", tz="UTC"))


class _Columns:
    """Column lists filled row by row (the Python peers)."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
        self.seen: set[str] = set()
        self.rejects = 0

    def add(self, e: Any, dumps: Callable[[Any], str]) -> None:
        if not isinstance(e, dict):
            self.rejects += 1
            return
        event_id, event_type = e.get("event_id"), e.get("event_type")
        us = _parse_ts(e.get("timestamp"))
        props = e.get("properties")
        amount = props.get("amount") if isinstance(props, dict) else None
        currency = props.get("currency") if isinstance(props, dict) else None
        version = e.get("schema_version", 1)
        if (not isinstance(event_id, str) or not isinstance(event_type, str) or event_type not in TYPES
                or us is None or (props is not None and not isinstance(props, dict))
                or (amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float)
                                            or not 0 <= amount <= 1e6))
                or (currency is not None and not isinstance(currency, str))
                or not isinstance(version, int)):
            self.rejects += 1
            return
        if event_id in self.seen:
            return
        self.seen.add(event_id)
        days, rem = divmod(us, 86_400_000_000)
        c = self.cols
        c["event_id"].append(event_id)
        c["event_type"].append(event_type)
        c["user_id"].append(e.get("user_id"))
        c["session_id"].append(e.get("session_id"))
        c["event_ts"].append(us)
        c["event_date"].append(days)
        c["event_hour"].append(rem // 3_600_000_000)
        c["properties"].append(None if props is None else dumps(props))
        c["schema_version"].append(version)
        c["amount"].append(None if amount is None else float(amount))
        c["currency"].append(currency)

    def write(self, out: Path) -> int:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _arrow_schema()
        arrays = []
        for f in schema:
            if f.name == "event_ts":
                arrays.append(pa.array(self.cols[f.name], pa.int64()).cast(f.type))
            elif f.name == "event_date":
                arrays.append(pa.array(self.cols[f.name], pa.int32()).cast(f.type))
            else:
                arrays.append(pa.array(self.cols[f.name], f.type))
        table = pa.Table.from_arrays(arrays, schema=schema)
        pq.write_table(table, out, compression="zstd")
        return table.num_rows


def _line_job(path: Path, out: Path, loads: Callable[[bytes], Any], dumps: Callable[[Any], str],
              errors: tuple[type[BaseException], ...]) -> tuple[int, int]:
    cols = _Columns()
    with open(path, "rb") as f:
        for raw in f:
            raw = raw.strip()
            if not raw:
                continue
            try:
                e = loads(raw)
            except errors:
                cols.rejects += 1
                continue
            cols.add(e, dumps)
    return cols.write(out), cols.rejects


def pure_python(path: Path, out: Path) -> tuple[int, int]:
    return _line_job(path, out, json.loads, lambda p: json.dumps(p, separators=(",", ":"), ensure_ascii=False),
                     (ValueError,))


def orjson_pyarrow(path: Path, out: Path) -> tuple[int, int]:
    import orjson

    return _line_job(path, out, orjson.loads, lambda p: orjson.dumps(p).decode(), (orjson.JSONDecodeError,))


def msgspec_pyarrow(path: Path, out: Path) -> tuple[int, int]:
    import msgspec

    # Built with defstruct: `from __future__ import annotations` would leave msgspec.Raw unresolvable in a class body.
    event_type_ = msgspec.defstruct("Event", [
        ("event_id", str), ("event_type", str), ("timestamp", str), ("user_id", str | None, None),
        ("session_id", str | None, None), ("properties", msgspec.Raw, msgspec.Raw()), ("schema_version", int, 1)])
    props_type = msgspec.defstruct("Props", [("amount", float | None, None), ("currency", str | None, None)])

    decode_event = msgspec.json.Decoder(event_type_).decode
    decode_props = msgspec.json.Decoder(props_type).decode
    cols = _Columns()
    c = cols.cols
    with open(path, "rb") as f:
        for raw in f:
            raw = raw.strip()
            if not raw:
                continue
            try:
                e = decode_event(raw)
                props = decode_props(e.properties) if len(e.properties) else None
            except (msgspec.ValidationError, msgspec.DecodeError):
                cols.rejects += 1
                continue
            us = _parse_ts(e.timestamp)
            amount = props.amount if props is not None else None
            if e.event_type not in TYPES or us is None or (amount is not None and not 0 <= amount <= 1e6):
                cols.rejects += 1
                continue
            if e.event_id in cols.seen:
                continue
            cols.seen.add(e.event_id)
            days, rem = divmod(us, 86_400_000_000)
            c["event_id"].append(e.event_id)
            c["event_type"].append(e.event_type)
            c["user_id"].append(e.user_id)
            c["session_id"].append(e.session_id)
            c["event_ts"].append(us)
            c["event_date"].append(days)
            c["event_hour"].append(rem // 3_600_000_000)
            c["properties"].append(bytes(e.properties).decode() if props is not None else None)
            c["schema_version"].append(e.schema_version)
            c["amount"].append(amount)
            c["currency"].append(props.currency if props is not None else None)
    return cols.write(out), cols.rejects


def pyarrow_json(path: Path, out: Path) -> tuple[int, int]:
    """pyarrow.json reads whole blocks and fails on a bad line: blocks that fail are bisected down to the line."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    props_type = pa.struct([("page", pa.string()), ("referrer", pa.string()), ("amount", pa.float64()),
                            ("currency", pa.string())])
    schema = pa.schema([("event_id", pa.string()), ("event_type", pa.string()), ("user_id", pa.string()),
                        ("timestamp", pa.string()), ("session_id", pa.string()), ("properties", props_type),
                        ("schema_version", pa.int64())])
    parse_options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    read_options = pj.ReadOptions(block_size=1 << 24)
    tables: list[pa.Table] = []
    bad = 0

    def read(chunk: list[bytes]) -> None:
        nonlocal bad
        try:
            t = pj.read_json(pa.BufferReader(b"".join(chunk)), read_options=read_options, parse_options=parse_options)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            if len(chunk) == 1:
                bad += 1
                return
            half = len(chunk) // 2
            read(chunk[:half])
            read(chunk[half:])
            return
        tables.append(t)

    with open(path, "rb") as f:
        lines = [ln for ln in f if ln.strip()]
    for i in range(0, len(lines), 20_000):
        read(lines[i:i + 20_000])
    del lines
    t = pa.concat_tables(tables)
    parsed = parse_timestamps(t.column("timestamp"))
    amount = pc.struct_field(t.column("properties"), "amount")
    ok = pc.and_kleene(pc.is_valid(t.column("event_id")), pc.is_in(t.column("event_type"), pa.array(EVENT_TYPES)))
    ok = pc.and_kleene(ok, pc.is_valid(parsed))
    amount_ok = pc.or_kleene(pc.is_null(amount), pc.and_(pc.greater_equal(amount, 0.0),
                                                         pc.less_equal(amount, 1e6)))
    ok = pc.fill_null(pc.and_kleene(ok, amount_ok), False)
    rejects = bad + (t.num_rows - pc.sum(ok).as_py())
    t = t.filter(ok)
    parsed = parsed.filter(ok)
    # First valid occurrence of each event_id.
    idx = pa.table({"event_id": t.column("event_id"), "i": pa.array(range(t.num_rows), pa.int64())})
    first = idx.group_by("event_id", use_threads=False).aggregate([("i", "min")]).column("i_min")
    t = t.take(pc.sort_indices(first))
    parsed = parsed.take(pc.sort_indices(first))
    ts_utc = parsed
    micros = parsed.cast(pa.int64())
    props = t.column("properties")
    props_json = pa.array([None if p is None else json.dumps({k: v for k, v in p.items() if v is not None},
                                                              separators=(",", ":")) for p in props.to_pylist()],
                          pa.string())
    out_table = pa.table({
        "event_id": t.column("event_id"), "event_type": t.column("event_type"), "user_id": t.column("user_id"),
        "session_id": t.column("session_id"), "event_ts": ts_utc,
        "event_date": pc.floor(pc.divide(micros, 86_400_000_000)).cast(pa.int32()).cast(pa.date32()),
        "event_hour": pc.divide(pc.subtract(micros, pc.multiply(pc.floor(pc.divide(micros, 86_400_000_000)).cast(
            pa.int64()), 86_400_000_000)), 3_600_000_000).cast(pa.int32()),
        "properties": props_json, "schema_version": t.column("schema_version").cast(pa.int32()),
        "amount": pc.struct_field(props, "amount"), "currency": pc.struct_field(props, "currency"),
    })
    pq.write_table(out_table, out, compression="zstd")
    return out_table.num_rows, rejects


def polars_job(path: Path, out: Path) -> tuple[int, int]:
    """Polars: lines as strings, fields by JSON path (null when a line is not JSON), vectorised rules."""
    import polars as pl

    raw = pl.read_csv(path, has_header=False, separator="\x1f", quote_char=None, new_columns=["line"],
                      schema_overrides={"line": pl.String})
    line = pl.col("line").str.strip_chars()
    ts = line.str.json_path_match("$.timestamp")
    amount_text = line.str.json_path_match("$.properties.amount")
    df = raw.select(
        line.str.json_path_match("$.event_id").alias("event_id"),
        line.str.json_path_match("$.event_type").alias("event_type"),
        line.str.json_path_match("$.user_id").alias("user_id"),
        line.str.json_path_match("$.session_id").alias("session_id"),
        ts.alias("timestamp"),
        line.str.json_path_match("$.properties").alias("properties"),
        line.str.json_path_match("$.schema_version").cast(pl.Int32, strict=False).fill_null(1).alias("schema_version"),
        amount_text.cast(pl.Float64, strict=False).alias("amount"),
        amount_text.is_null().alias("no_amount"),
        line.str.json_path_match("$.properties.currency").alias("currency"),
        line.str.starts_with("{").alias("is_object"),
    )
    well_formed = pl.col("timestamp").str.contains("^" + RFC3339.pattern + "$").fill_null(False)
    cut = pl.col("timestamp").str.replace(r"(\.\d{6})\d+", "${1}").str.replace("[Zz]$", "+00:00")
    event_ts = (pl.when(well_formed).then(cut).otherwise(None)
                .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", time_zone="UTC", strict=False))
    df = df.with_columns(event_ts.alias("event_ts"))
    ok = (pl.col("is_object") & pl.col("event_id").is_not_null() & pl.col("event_type").is_in(EVENT_TYPES)
          & pl.col("event_ts").is_not_null()
          & (pl.col("no_amount") | pl.col("amount").is_between(0, 1e6))).fill_null(False)
    valid = df.filter(ok)
    rejects = df.height - valid.height
    valid = valid.unique(subset="event_id", keep="first", maintain_order=True)
    result = valid.select(
        "event_id", "event_type", "user_id", "session_id", "event_ts",
        pl.col("event_ts").dt.date().alias("event_date"),
        pl.col("event_ts").dt.hour().cast(pl.Int32).alias("event_hour"),
        "properties", "schema_version", "amount", "currency",
    )
    result.write_parquet(out, compression="zstd")
    return result.height, rejects


def duckdb_job(path: Path, out: Path, threads: int | None) -> tuple[int, int]:
    """DuckDB: read_json (lines that are not JSON objects read as all-NULL rows), SQL rules, a window for dedupe,
    COPY to Parquet."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")
    types = ", ".join(f"'{t}'" for t in EVENT_TYPES)
    con.execute(f"""
        CREATE TEMP TABLE valid AS
        SELECT * FROM (
            SELECT n, event_id, event_type, user_id, session_id, properties, schema_version,
                   TRY_CAST(properties ->> '$.amount' AS DOUBLE) AS amount, properties ->> '$.currency' AS currency,
                   CASE WHEN regexp_full_match(timestamp, '{RFC3339.pattern}')
                        THEN TRY_CAST(regexp_replace(timestamp, '(\\.\\d{{6}})\\d+', '\\1') AS TIMESTAMPTZ)
                   END AS event_ts
            FROM (SELECT row_number() OVER () AS n, *
                  FROM read_json('{path}', format = 'newline_delimited', ignore_errors = true,
                                 columns = {{event_id: 'VARCHAR', event_type: 'VARCHAR', user_id: 'VARCHAR',
                                            timestamp: 'VARCHAR', session_id: 'VARCHAR', properties: 'JSON',
                                            schema_version: 'INTEGER'}}))
        )
        WHERE event_id IS NOT NULL AND event_type IN ({types}) AND event_ts IS NOT NULL
          AND (properties IS NULL OR json_type(properties) = 'OBJECT')
          AND (properties ->> '$.amount' IS NULL OR amount BETWEEN 0 AND 1e6)
    """)
    total = con.execute(f"SELECT count(*) FROM read_csv('{path}', columns = {{'l': 'VARCHAR'}}, delim = '\\x1f', "
                        "quote = '', escape = '', header = false, auto_detect = false) WHERE trim(l) <> ''"
                        ).fetchone()[0]  # type: ignore[index]
    valid = con.execute("SELECT count(*) FROM valid").fetchone()[0]  # type: ignore[index]
    con.execute(f"""
        COPY (
            SELECT event_id, event_type, user_id, session_id, event_ts, CAST(event_ts AS DATE) AS event_date,
                   CAST(hour(event_ts) AS INTEGER) AS event_hour, CAST(properties AS VARCHAR) AS properties,
                   coalesce(schema_version, 1) AS schema_version, amount, currency
            FROM valid
            QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY n) = 1
            ORDER BY n
        ) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
    """)
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]  # type: ignore[index]
    return rows, total - valid


def eventpipe_job(path: Path, out: Path, threads: int | None = 1, fmt: str = "ndjson") -> tuple[int, int]:
    """The project's job as a user runs it on a file: NDJSON streamed to one Parquet data file chunk by chunk
    (ndjson_file_to_parquet: parse, validate, transform, dedupe and write, the chunks on `threads` workers;
    None: the cores this process may use); CSV through process_batch + write_iceberg_parquet."""
    import eventpipe_core as ec

    if fmt != "ndjson":
        return eventpipe_batch_job(path, out, threads, fmt)
    result = ec.ndjson_file_to_parquet(str(path), str(out), ICEBERG_SCHEMA, schema=ec.Schema(SCHEMA),
                                       compression="zstd", threads=threads)
    return result.data_file.record_count, len(result.rejects)


def eventpipe_batch_job(path: Path, out: Path, threads: int | None = 1, fmt: str = "ndjson") -> tuple[int, int]:
    """The project's job on the whole input at once: process_batch (parse, validate, transform, dedupe) +
    write_iceberg_parquet, on `threads` threads (None: the cores this process may use)."""
    import eventpipe_core as ec

    schema = ec.Schema(SCHEMA)
    # The file is read through a read-only memory map (the core borrows the buffer): no copy into a fresh `bytes`.
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        result = ec.process_batch(data, format=fmt, schema=schema, threads=threads)
    records = result.records
    ec.write_iceberg_parquet(records, str(out), ICEBERG_SCHEMA, compression="zstd", threads=threads)
    return records.num_rows, len(result.rejects)


def duckdb_csv_job(path: Path, out: Path, threads: int | None) -> tuple[int, int]:
    """DuckDB on the CSV form: read_csv (every column as text), the same rules in SQL, a window for dedupe."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")
    types = ", ".join(f"'{t}'" for t in EVENT_TYPES)
    con.execute(f"""
        CREATE TEMP TABLE rows AS
        SELECT row_number() OVER () AS n, *
        FROM read_csv('{path}', header = true, all_varchar = true, auto_detect = false, quote = '"', escape = '"',
                      columns = {{event_id: 'VARCHAR', event_type: 'VARCHAR', user_id: 'VARCHAR',
                                 timestamp: 'VARCHAR', session_id: 'VARCHAR', properties: 'VARCHAR',
                                 schema_version: 'VARCHAR'}})
    """)
    con.execute(f"""
        CREATE TEMP TABLE valid AS
        SELECT * FROM (
            SELECT n, event_id, event_type, user_id, session_id, props AS properties,
                   properties IS NULL OR props IS NOT NULL AS props_ok,
                   coalesce(TRY_CAST(schema_version AS INTEGER), 1) AS schema_version,
                   TRY_CAST(props ->> '$.amount' AS DOUBLE) AS amount, props ->> '$.currency' AS currency,
                   CASE WHEN regexp_full_match(timestamp, '{RFC3339.pattern}')
                        THEN TRY_CAST(regexp_replace(timestamp, '(\\.\\d{{6}})\\d+', '\\1') AS TIMESTAMPTZ)
                   END AS event_ts
            FROM (SELECT *, CASE WHEN json_valid(properties) THEN CAST(properties AS JSON) END AS props FROM rows)
        )
        WHERE props_ok AND event_id IS NOT NULL AND event_type IN ({types}) AND event_ts IS NOT NULL
          AND (properties IS NULL OR json_type(properties) = 'OBJECT')
          AND (properties ->> '$.amount' IS NULL OR amount BETWEEN 0 AND 1e6)
    """)
    total = con.execute("SELECT count(*) FROM rows").fetchone()[0]  # type: ignore[index]
    valid = con.execute("SELECT count(*) FROM valid").fetchone()[0]  # type: ignore[index]
    con.execute(f"""
        COPY (
            SELECT event_id, event_type, user_id, session_id, event_ts, CAST(event_ts AS DATE) AS event_date,
                   CAST(hour(event_ts) AS INTEGER) AS event_hour, CAST(properties AS VARCHAR) AS properties,
                   schema_version, amount, currency
            FROM valid
            QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY n) = 1
            ORDER BY n
        ) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
    """)
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]  # type: ignore[index]
    return rows, total - valid


def pyarrow_csv(path: Path, out: Path) -> tuple[int, int]:
    """pyarrow.csv reads the CSV form (every column as text); `properties` parsed by orjson (pyarrow has no JSON
    function for a string column), the rules and dedupe with pyarrow.compute."""
    import orjson
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from bench.w1_data import CSV_COLUMNS

    t = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
        column_types={c: pa.string() for c in CSV_COLUMNS}, strings_can_be_null=True))
    total = t.num_rows
    props: list[dict[str, Any] | None] = []
    props_ok: list[bool] = []
    for text in t.column("properties").to_pylist():
        value: Any = None
        if text is not None:
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                value = False
        props.append(value if isinstance(value, dict) else None)
        props_ok.append(text is None or isinstance(value, dict))
    amount = pa.array([None if p is None else p.get("amount") for p in props], pa.float64())
    currency = pa.array([None if p is None else p.get("currency") for p in props], pa.string())
    parsed = parse_timestamps(t.column("timestamp"))
    ok = pc.and_kleene(pc.is_valid(t.column("event_id")), pc.is_in(t.column("event_type"), pa.array(EVENT_TYPES)))
    ok = pc.and_kleene(ok, pc.is_valid(parsed))
    ok = pc.and_kleene(ok, pa.array(props_ok))
    ok = pc.and_kleene(ok, pc.or_kleene(pc.is_null(amount), pc.and_(pc.greater_equal(amount, 0.0),
                                                                    pc.less_equal(amount, 1e6))))
    ok = pc.fill_null(ok, False)
    rejects = total - pc.sum(ok).as_py()
    t = t.append_column("event_ts", parsed).append_column("amount", amount).append_column("currency", currency)
    t = t.filter(ok)
    idx = pa.table({"event_id": t.column("event_id"), "i": pa.array(range(t.num_rows), pa.int64())})
    first = idx.group_by("event_id", use_threads=False).aggregate([("i", "min")]).column("i_min")
    t = t.take(pc.sort_indices(first))
    micros = t.column("event_ts").cast(pa.int64())
    days = pc.floor(pc.divide(micros, 86_400_000_000)).cast(pa.int64())
    out_table = pa.table({
        "event_id": t.column("event_id"), "event_type": t.column("event_type"), "user_id": t.column("user_id"),
        "session_id": t.column("session_id"), "event_ts": t.column("event_ts"),
        "event_date": days.cast(pa.int32()).cast(pa.date32()),
        "event_hour": pc.divide(pc.subtract(micros, pc.multiply(days, 86_400_000_000)), 3_600_000_000).cast(pa.int32()),
        "properties": t.column("properties"),
        "schema_version": pc.fill_null(t.column("schema_version").cast(pa.int32()), 1),
        "amount": t.column("amount"), "currency": t.column("currency"),
    })
    pq.write_table(out_table, out, compression="zstd")
    return out_table.num_rows, rejects
