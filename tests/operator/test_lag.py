"""Reading consumer lag from Prometheus text, over real HTTP from a metrics server on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from eventpipe_operator.handlers import shards_condition
from eventpipe_operator.lag import lag_from_metrics_text, scrape_consumers, stopped_from_metrics_text

METRIC = "eventpipe_consumer_millis_behind_latest"  # the old unit (ms) is still read
TEXT = f"""# HELP {METRIC} Kinesis MillisBehindLatest of the last GetRecords, per shard.
# TYPE {METRIC} gauge
{METRIC}{{shard="shardId-000000000000"}} 1500.0
{METRIC}{{shard="shardId-000000000001"}} 90000.0
# TYPE eventpipe_consumer_records_read_total counter
eventpipe_consumer_records_read_total 12.0
# TYPE eventpipe_consumer_stopped_shards gauge
eventpipe_consumer_stopped_shards 1.0
"""


def test_worst_shard_in_seconds() -> None:
    assert lag_from_metrics_text(TEXT, METRIC) == 90.0
    assert lag_from_metrics_text("eventpipe_consumer_records_read_total 1\n", METRIC) is None


@pytest.fixture()
def metrics_server() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = TEXT.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_scrape_over_http_and_report_unreachable_pods(metrics_server: int) -> None:
    scrape = scrape_consumers(["127.0.0.1"], metrics_server, METRIC, timeout=2)
    assert (scrape.lag_seconds, scrape.stopped_shards, scrape.errors) == (90.0, 1, [])
    scrape = scrape_consumers(["127.0.0.1", "127.0.0.2"], metrics_server, METRIC, timeout=0.5)
    assert scrape.lag_seconds == 90.0 and scrape.stopped_shards == 1
    assert len(scrape.errors) == 1 and "127.0.0.2" in scrape.errors[0]


def test_seconds_metric_is_read_as_seconds() -> None:
    text = ('# TYPE eventpipe_consumer_lag_seconds gauge\n'
            'eventpipe_consumer_lag_seconds{shard="shardId-000000000000"} 1.5\n'
            'eventpipe_consumer_lag_seconds{shard="shardId-000000000001"} 90.25\n')
    assert lag_from_metrics_text(text, "eventpipe_consumer_lag_seconds") == 90.25


def test_stopped_shards_are_summed_and_make_the_condition_false() -> None:
    """A stopped shard is loud in status: ShardsRunning is False (and so Ready) while any pod reports one."""
    assert stopped_from_metrics_text(TEXT) == 1
    assert stopped_from_metrics_text("eventpipe_consumer_records_read_total 1\n") == 0
    assert stopped_from_metrics_text("# TYPE eventpipe_consumer_stopped_shards gauge\n"
                                     "eventpipe_consumer_stopped_shards 0.0\n") == 0
    stopped = shards_condition(2)
    assert (stopped.type, stopped.ok, stopped.reason) == ("ShardsRunning", False, "ShardStopped")
    assert "2 shard(s)" in stopped.message
    assert shards_condition(0).ok is True
