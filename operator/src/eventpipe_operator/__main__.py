"""`python -m eventpipe_operator`: run the operator (the Helm chart's container command).

Flags mirror kopf's: --namespace NS (repeatable) to watch some namespaces, otherwise all of them; --standalone
to run without peering (one replica, e.g. locally). With peering, several replicas elect one active operator
through the KopfPeering / ClusterKopfPeering object named EVENTPIPE_OPERATOR_PEERING_NAME.
"""

from __future__ import annotations

import argparse
from typing import Any

import kopf
from eventpipe_common.logging import configure_logging, get_logger

from . import handlers
from .config import OperatorSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="eventpipe_operator", description=__doc__)
    parser.add_argument("--namespace", "-n", action="append", default=[], help="watch only this namespace")
    parser.add_argument("--standalone", action="store_true", help="no peering (a single replica)")
    parser.add_argument("--liveness", default="http://127.0.0.1:8081/healthz",
                        help="kopf liveness endpoint (the Helm chart binds it to the pod's address)")
    args = parser.parse_args(argv)
    op = OperatorSettings()
    configure_logging("operator", op.log_level)
    # One line with every setting (none is a secret): what this replica runs with, for its logs (the image smoke
    # test and tests/cluster look for it; a merge had dropped it).
    get_logger().info("operator_settings", **op.model_dump())
    assert handlers.reconcile is not None  # importing the module registered the handlers
    kopf.run(**run_kwargs(args.namespace, args.standalone, op.peering_name, args.liveness))


def run_kwargs(namespaces: list[str], standalone: bool, peering_name: str, liveness: str) -> dict[str, Any]:
    """kopf.run's arguments. A peering name makes kopf's peering *mandatory*, and --standalone means no peering
    selectors at all: given both, kopf waits forever for a peering resource it never watches and reconciles
    nothing. So the peering name is passed only with peering on (then a missing peering object pauses the
    operator, as it should: two replicas without it would both act)."""
    return {
        "clusterwide": not namespaces,
        "namespaces": namespaces,
        "standalone": standalone,
        "peering_name": None if standalone else peering_name,
        "liveness_endpoint": liveness,
    }


if __name__ == "__main__":
    main()
