"""Count the rejected records: the rows of the Iceberg table `<ns>.raw_events_rejected`.

The count feeds the staging suite's rejected share. It is read from the current snapshot's summary
(`total-records`, kept by every Iceberg writer), so no data file is opened; a scan is the fallback when a
writer left no summary. A caller that already knows the count (an Airflow task) passes it instead.
"""

from __future__ import annotations

from eventpipe_common.errors import DependencyUnavailableError
from eventpipe_common.settings import PipelineSettings
from eventpipe_common.tables import RAW_EVENTS_REJECTED


def count_rejected(settings: PipelineSettings) -> int:
    """Rows in `<namespace>.raw_events_rejected` at its current snapshot (0 for a table never written)."""
    from pyiceberg.catalog import load_catalog
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
    from sqlalchemy.exc import SQLAlchemyError

    identifier = (settings.namespace, RAW_EVENTS_REJECTED)
    try:
        catalog = load_catalog(settings.catalog_name, **settings.resolved_catalog_properties())
        table = catalog.load_table(identifier)
    except (SQLAlchemyError, OSError) as exc:
        raise DependencyUnavailableError(
            f"Iceberg catalog {settings.catalog_name!r} unavailable ({type(exc).__name__}); "
            "pass --rejected-count to run without it",
            catalog=settings.catalog_name,
        ) from exc
    except (NoSuchTableError, NoSuchNamespaceError) as exc:
        raise DependencyUnavailableError(
            f"Iceberg table {'.'.join(identifier)} not found in catalog {settings.catalog_name!r}; "
            "pass --rejected-count to run without it",
            table=".".join(identifier),
        ) from exc
    snapshot = table.current_snapshot()
    if snapshot is None:
        return 0
    total = snapshot.summary.additional_properties.get("total-records") if snapshot.summary else None
    if total is not None:
        return int(total)
    return int(table.scan(selected_fields=("rejected_at",)).to_arrow().num_rows)
