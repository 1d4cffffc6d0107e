"""The expectation suites, defined as code: `staging_suite` and `marts_suite`.

A suite here is a list of `Check`s: one batch (a table of the dbt project, or a small derived query such as
"current versions per user") and the GX expectations that batch must meet. Each check becomes one GX
ExpectationSuite named after its batch (e.g. `staging.stg_events`), validated on a pandas batch loaded from the
warehouse. Every expectation carries `meta.severity`: "critical" fails the run (non-zero exit, alert),
"warning" is reported only.

Building the suites is pure: thresholds come in as `SuiteParams`, nothing is read here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from great_expectations.expectations.core.expect_column_values_to_be_between import ExpectColumnValuesToBeBetween
from great_expectations.expectations.core.expect_column_values_to_be_in_set import ExpectColumnValuesToBeInSet
from great_expectations.expectations.core.expect_column_values_to_be_of_type import ExpectColumnValuesToBeOfType
from great_expectations.expectations.core.expect_column_values_to_be_unique import ExpectColumnValuesToBeUnique
from great_expectations.expectations.core.expect_column_values_to_not_be_null import ExpectColumnValuesToNotBeNull
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.row_conditions import Column

Severity = Literal["critical", "warning"]
SuiteName = Literal["staging", "marts"]
SUITES: tuple[SuiteName, ...] = ("staging", "marts")

# Logical column types -> the pandas type GX compares a loaded column's dtype with. Batches are normalised on
# load (warehouse.normalize_frame: integers -> Int64, floats and decimals -> float64, timestamps and dates ->
# UTC-aware), so a suite checks the logical type a column carries, not the storage width a model chose.
PANDAS_TYPES: dict[str, str] = {
    "string": "str",
    "timestamp": "Timestamp",
    "date": "Timestamp",
    "integer": "int64",
    "double": "float64",
    "boolean": "bool",
}

STG_EVENTS_TYPES: dict[str, str] = {
    "event_id": "string",
    "event_type": "string",
    "event_ts": "timestamp",
    "event_date": "date",
    "event_hour": "integer",
    "user_id": "string",
    "session_id": "string",
    "product_id": "string",
    "amount": "double",
    "currency": "string",
    "quantity": "integer",
    "properties": "string",
    "ingested_at": "timestamp",
}
STG_USERS_TYPES: dict[str, str] = {
    "user_id": "string",
    "email": "string",
    "country": "string",
    "plan": "string",
    "changed_at": "timestamp",
}
DIM_USERS_TYPES: dict[str, str] = {
    "user_sk": "string",  # dbt's surrogate_key macro: md5 text
    "user_id": "string",
    "email": "string",
    "country": "string",
    "plan": "string",
    "valid_from": "timestamp",
    "valid_to": "timestamp",
    "is_current": "boolean",
}
DIM_PRODUCTS_TYPES: dict[str, str] = {
    "product_sk": "string",
    "product_id": "string",
    "name": "string",
    "category": "string",
    "price": "double",
}
FACT_EVENTS_TYPES: dict[str, str] = {
    "event_id": "string",
    "event_type": "string",
    "event_ts": "timestamp",
    "event_date": "date",
    "user_id": "string",
    "user_sk": "string",
    "product_id": "string",
    "product_sk": "string",
    "amount": "double",
    "currency": "string",
    "quantity": "integer",
}


@dataclass(frozen=True)
class SuiteParams:
    """The thresholds a suite is built with (from QualitySettings, or chosen by a test)."""

    now: dt.datetime
    event_types: Sequence[str] | None
    max_clock_skew: dt.timedelta = dt.timedelta(minutes=5)
    amount_min: float = 0.0
    amount_max: float = 1_000_000.0
    max_rejected_share: float = 0.05
    row_count_tolerance: float = 0.0
    rejected_rows: int = 0


@dataclass(frozen=True)
class Check:
    """One batch and its expectations. `source` names the table the batch comes from (for messages); `key` is
    the column that identifies a row, quoted for each failing row so a human can find it."""

    name: str
    query: str
    expectations: list[Expectation] = field(default_factory=list)
    source: str = ""
    key: str | None = None


def _meta(severity: Severity, why: str) -> dict[str, str]:
    return {"severity": severity, "notes": why}


def not_null(column: str, severity: Severity = "critical", when_present: str | None = None) -> Expectation:
    """Nulls in `column` (only on rows where `when_present` is not null, if given)."""
    if when_present is None:
        return ExpectColumnValuesToNotBeNull(column=column, meta=_meta(severity, f"{column} is a key"))
    return ExpectColumnValuesToNotBeNull(
        column=column,
        row_condition=Column(when_present).is_not_null(),
        meta=_meta(severity, f"{column} must be set wherever {when_present} is"),
    )


def unique(column: str, severity: Severity = "critical") -> Expectation:
    return ExpectColumnValuesToBeUnique(column=column, meta=_meta(severity, f"{column} identifies a row"))


def of_types(columns: dict[str, str], severity: Severity = "critical") -> list[Expectation]:
    """One type expectation per column, from its logical type (see PANDAS_TYPES)."""
    return [
        ExpectColumnValuesToBeOfType(
            column=column,
            type_=PANDAS_TYPES[logical],
            meta=_meta(severity, f"{column} is a {logical} column"),
        )
        for column, logical in columns.items()
    ]


def between(column: str, low: float | dt.datetime | None, high: float | dt.datetime | None,
            severity: Severity, why: str) -> Expectation:
    return ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high, meta=_meta(severity, why))


def staging_suite(params: SuiteParams) -> list[Check]:
    """Staging: keys not null, column types, event_ts not in the future, allowed event types, amount range,
    and the rejected share (a one-row batch: accepted rows, rejected rows, their share)."""
    events: list[Expectation] = [
        *(not_null(c) for c in ("event_id", "event_type", "event_ts", "event_date", "ingested_at")),
        unique("event_id"),
        *of_types(STG_EVENTS_TYPES),
        between("event_ts", None, params.now + params.max_clock_skew, "warning",
                "events from the future: a client clock is off by more than the allowed skew"),
        between("amount", params.amount_min, params.amount_max, "critical", "amounts outside the plausible range"),
    ]
    if params.event_types is not None:
        events.append(ExpectColumnValuesToBeInSet(
            column="event_type", value_set=sorted(params.event_types),
            meta=_meta("critical", "only the pipeline schema's event types"),
        ))
    users: list[Expectation] = [
        not_null("user_id"),
        not_null("changed_at"),
        *of_types(STG_USERS_TYPES),
    ]
    ingest: list[Expectation] = [
        between("rejected_share", 0.0, params.max_rejected_share, "critical",
                "share of received records that validation rejected"),
    ]
    return [
        Check("staging.stg_events", "SELECT * FROM staging.stg_events", events, "staging.stg_events", "event_id"),
        Check("staging.stg_users", "SELECT * FROM staging.stg_users", users, "staging.stg_users", "user_id"),
        Check("staging.ingest_summary", ingest_summary_sql(params.rejected_rows), ingest,
              "staging.stg_events + raw_events_rejected"),
    ]


def marts_suite(params: SuiteParams) -> list[Check]:
    """Marts: dimension keys unique and not null, fact foreign keys set and resolving, one current version per
    user, and the fact row count reconciling with staging within a tolerance."""
    dim_users: list[Expectation] = [
        not_null("user_sk"), unique("user_sk"),
        not_null("user_id"), not_null("valid_from"), not_null("is_current"),
        *of_types(DIM_USERS_TYPES),
    ]
    current_versions: list[Expectation] = [
        between("current_versions", 1, 1, "critical", "SCD2: exactly one current version per user"),
    ]
    dim_products: list[Expectation] = [
        not_null("product_sk"), unique("product_sk"),
        not_null("product_id"), unique("product_id"),
        *of_types(DIM_PRODUCTS_TYPES),
        between("price", params.amount_min, params.amount_max, "warning", "prices outside the plausible range"),
    ]
    facts: list[Expectation] = [
        not_null("event_id"), unique("event_id"),
        # dbt leaves user_sk null for events before a user's first trait event, and product_sk null for a
        # product never described by product_updated: worth a warning, not a stop.
        not_null("user_sk", "warning", when_present="user_id"),
        not_null("product_sk", "warning", when_present="product_id"),
        ExpectColumnValuesToBeInSet(column="user_sk_resolves", value_set=[True],
                                        meta=_meta("critical", "user_sk must exist in dim_users")),
        ExpectColumnValuesToBeInSet(column="product_sk_resolves", value_set=[True],
                                        meta=_meta("critical", "product_sk must exist in dim_products")),
        *of_types(FACT_EVENTS_TYPES),
    ]
    reconciliation: list[Expectation] = [
        between("relative_gap", 0.0, params.row_count_tolerance, "critical",
                "fact_events rows vs distinct staging events: |fact - staging| / staging"),
    ]
    return [
        Check("marts.dim_users", "SELECT * FROM marts.dim_users", dim_users, "marts.dim_users", "user_id"),
        Check("marts.dim_users_current_versions", CURRENT_VERSIONS_SQL, current_versions, "marts.dim_users",
              "user_id"),
        Check("marts.dim_products", "SELECT * FROM marts.dim_products", dim_products, "marts.dim_products",
              "product_id"),
        Check("marts.fact_events", FACT_EVENTS_SQL, facts, "marts.fact_events", "event_id"),
        Check("marts.row_count_reconciliation", RECONCILIATION_SQL, reconciliation,
              "marts.fact_events vs staging.stg_events"),
    ]


# Portable SQL (DuckDB and Snowflake): no FILTER clauses, no DuckDB-only functions.
CURRENT_VERSIONS_SQL = """
SELECT user_id, SUM(CASE WHEN is_current THEN 1 ELSE 0 END) AS current_versions
FROM marts.dim_users GROUP BY user_id
""".strip()

# A foreign key "resolves" when the dimension has a row with that key; NULL when the fact has no key (the
# not-null expectations judge those rows), so only present keys are checked here.
FACT_EVENTS_SQL = """
SELECT f.*,
       CASE WHEN f.user_sk IS NULL THEN NULL
            ELSE EXISTS (SELECT 1 FROM marts.dim_users u WHERE u.user_sk = f.user_sk) END AS user_sk_resolves,
       CASE WHEN f.product_sk IS NULL THEN NULL
            ELSE EXISTS (SELECT 1 FROM marts.dim_products p WHERE p.product_sk = f.product_sk) END
            AS product_sk_resolves
FROM marts.fact_events f
""".strip()

RECONCILIATION_SQL = """
SELECT s.staging_events, f.fact_events,
       CASE WHEN s.staging_events = 0 THEN CASE WHEN f.fact_events = 0 THEN 0.0 ELSE 1.0 END
            ELSE ABS(f.fact_events - s.staging_events) * 1.0 / s.staging_events END AS relative_gap
FROM (SELECT COUNT(DISTINCT event_id) AS staging_events FROM staging.stg_events) s,
     (SELECT COUNT(*) AS fact_events FROM marts.fact_events) f
""".strip()


def ingest_summary_sql(rejected_rows: int) -> str:
    """One row: accepted rows (staging), rejected rows (counted in Iceberg or passed in), the rejected share."""
    if not isinstance(rejected_rows, int) or rejected_rows < 0:
        raise ValueError(f"rejected_rows must be a non-negative integer, got {rejected_rows!r}")
    r = rejected_rows
    return (
        f"SELECT a.accepted_rows, {r} AS rejected_rows, "
        f"CASE WHEN a.accepted_rows + {r} = 0 THEN 0.0 ELSE {r} * 1.0 / (a.accepted_rows + {r}) END "
        f"AS rejected_share FROM (SELECT COUNT(*) AS accepted_rows FROM staging.stg_events) a"
    )


def build_suite(name: SuiteName, params: SuiteParams) -> list[Check]:
    return staging_suite(params) if name == "staging" else marts_suite(params)
