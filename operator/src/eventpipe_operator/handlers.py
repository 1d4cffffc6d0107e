"""kopf handlers for EventPipeline: they parse, call the pure builders and deciders, and apply the result.

- create / update / resume -> `reconcile`: check the spec, provision the stream and tables when asked, apply
  every child with server-side apply, prune children the spec no longer wants, write status.
- a timer -> `monitor`: read the Deployments and the consumers' lag, scale the consumers (scaling.decide),
  refresh the conditions; each replica change is a Kubernetes Event.
- delete -> `cleanup`, registered only for objects whose deletionPolicy is Delete: kopf puts its finalizer on
  those before any handler provisions anything, so a deletion can never outrun the record of what to clean. A
  Retain pipeline is deleted at once and its children go with it through their owner references.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import kopf
from botocore.exceptions import BotoCoreError, ClientError
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from . import manifests, metrics, provision, scaling
from .checks import check_spec, disallowed_urls
from .config import OperatorSettings
from .kube import Kube, NotOwnedError, load_api_client, object_path
from .lag import scrape_consumers
from .spec import API_VERSION, GROUP, PLURAL, VERSION, Pipeline
from .status import Condition, merge_conditions, now_iso, phase_of, ready_condition, transitions

_Logger = logging.Logger | logging.LoggerAdapter[Any]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: _Logger, **_: Any) -> None:
    op = OperatorSettings()
    settings.persistence.finalizer = "eventpipe.io/cleanup"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="eventpipe.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="eventpipe.io")
    settings.peering.name = op.peering_name
    settings.posting.level = logging.WARNING  # our own Events are posted explicitly with kopf.event
    settings.watching.server_timeout = 300
    memo.op = op
    memo.kube = Kube(load_api_client(), op.field_manager)
    if op.metrics_port:
        metrics.serve(op.metrics_host, op.metrics_port)
        logger.info("operator metrics on %s:%d/metrics", op.metrics_host, op.metrics_port)


# ------------------------------------------------------------------------------------------------- reconcile


def _previous(status: Any, *path: str) -> Any:
    node: Any = status
    for key in path:
        if not isinstance(node, dict) and not hasattr(node, "get"):
            return None
        node = node.get(key)
        if node is None:
            return None
    return node


def _initial_consumers(pipeline: Pipeline, status: Any) -> int:
    """The consumer replica count to apply: the scaler's last decision, else minReplicas (within bounds)."""
    desired = _previous(status, "consumers", "desiredReplicas")
    consumer = pipeline.spec.consumer
    value = int(desired) if desired else consumer.min_replicas
    return min(max(value, consumer.min_replicas), consumer.max_replicas)


def _stream_condition(pipeline: Pipeline, op: OperatorSettings, status: Any,
                      patch: kopf.Patch) -> tuple[Condition, provision.StreamState | None]:
    created_before = bool(_previous(status, "stream", "createdByOperator"))
    try:
        kinesis = provision.kinesis_client(pipeline)
        if pipeline.spec.stream.create:
            state = provision.ensure_stream(kinesis, pipeline, op.provision_timeout_seconds)
        else:
            found = provision.describe_stream(kinesis, pipeline.stream_name)
            if found is None:
                cond = Condition("StreamReady", False, "StreamMissing",
                                 f"stream {pipeline.stream_name!r} does not exist; set spec.stream.create: true "
                                 "to have the operator create it")
                return cond, None
            state = found
    except provision.ProvisioningError as exc:
        metrics.ERRORS.labels("stream").inc()
        return Condition("StreamReady", False, "StreamProvisioningFailed", str(exc)), None
    except (ClientError, BotoCoreError) as exc:
        metrics.ERRORS.labels("stream").inc()
        return Condition("StreamReady", None, "StreamUnreachable", f"Kinesis: {exc}"), None
    # The ARN recorded when the operator created the stream is kept: Delete removes only that stream.
    patch.status["stream"] = {
        "name": state.name, "arn": _previous(status, "stream", "arn") if created_before else state.arn,
        "status": state.status, "openShards": state.open_shards,
        "createdByOperator": created_before or state.created,
    }
    verb = "created" if state.created else "exists"
    message = f"stream {state.name!r} {verb}, {state.status}, {state.open_shards} open shard(s)"
    if state.open_shards != pipeline.spec.stream.shards:
        # Resharding is an AWS operation with its own limits and costs: the operator reports, never reshards.
        message += f"; spec.stream.shards is {pipeline.spec.stream.shards} (reshard with UpdateShardCount)"
    return Condition("StreamReady", True, "StreamActive", message), state


def _catalog(pipeline: Pipeline, kube: Kube, op: OperatorSettings) -> Any:
    """The pipeline's catalog, loaded with the operator's credentials only if every URL-like property (also
    those from the catalog Secret) is one the chart's allowedCatalogUris permits."""
    secret_props = None
    if pipeline.spec.iceberg.catalog_secret_ref is not None:
        secret_props = kube.secret_data(pipeline.namespace, pipeline.spec.iceberg.catalog_secret_ref.name)
    bad = disallowed_urls({**pipeline.spec.iceberg.catalog_properties, **(secret_props or {})},
                          op.allowed_catalog_uris)
    if bad:
        raise provision.ProvisioningError(f"catalog properties {', '.join(k.split('=')[0] for k in bad)} name "
                                          "a URL the operator's allowedCatalogUris does not allow")
    return provision.catalog_for(pipeline, secret_props)


def _table_condition(pipeline: Pipeline, kube: Kube, op: OperatorSettings, status: Any,
                     patch: kopf.Patch) -> Condition:
    if not pipeline.spec.iceberg.create_tables:
        return Condition("TableReady", True, "NotRequested",
                         "spec.iceberg.createTables is false: the consumer creates the tables on first write")
    created_before = bool(_previous(status, "tables", "createdByOperator"))
    try:
        state = provision.ensure_tables(_catalog(pipeline, kube, op), pipeline)
    except (provision.ProvisioningError, LookupError) as exc:
        metrics.ERRORS.labels("tables").inc()
        return Condition("TableReady", False, "TableProvisioningFailed", str(exc))
    except Exception as exc:  # noqa: BLE001 - any catalog backend error is reported on the resource, then retried
        metrics.ERRORS.labels("tables").inc()
        return Condition("TableReady", None, "CatalogUnreachable", f"{type(exc).__name__}: {exc}")
    # What the operator created (table UUIDs, the namespace) accumulates: Delete drops exactly those.
    recorded = {t["name"]: t["uuid"] for t in _previous(status, "tables", "createdTables") or []}
    recorded.update(state.uuids)
    patch.status["tables"] = {
        "catalog": pipeline.spec.iceberg.catalog_name,
        "namespace": state.namespace, "created": sorted(state.created + state.existing),
        "createdByOperator": created_before or bool(state.created),
        "createdTables": [{"name": k, "uuid": v} for k, v in sorted(recorded.items())],
        "namespaceCreated": bool(_previous(status, "tables", "namespaceCreated")) or state.namespace_created,
    }
    if state.problems:
        return Condition("TableReady", False, "TableSchemaMismatch", "; ".join(state.problems))
    return Condition("TableReady", True, "TablesExist",
                     f"{len(state.created)} created, {len(state.existing)} already there in {state.namespace!r}")


def _availability(pipeline: Pipeline, kube: Kube) -> tuple[list[Condition], dict[str, Any], dict[str, Any]]:
    """IngestAvailable and ConsumersScaled from the Deployments' status (written by their controller)."""
    ingest = kube.deployment(pipeline.namespace, manifests.child_name(pipeline, "ingest")) or {}
    consumer = kube.deployment(pipeline.namespace, manifests.child_name(pipeline, "consumer")) or {}
    want_ingest = int((ingest.get("spec") or {}).get("replicas") or 0)
    have_ingest = int((ingest.get("status") or {}).get("availableReplicas") or 0)
    needed = max(1, want_ingest - pipeline.spec.ingest.max_unavailable)
    ingest_ok = have_ingest >= needed
    conds = [Condition("IngestAvailable", ingest_ok,
                       "MinimumReplicasAvailable" if ingest_ok else "MinimumReplicasUnavailable",
                       f"{have_ingest}/{want_ingest} ingest pods available (need {needed})")]
    want_consumers = int((consumer.get("spec") or {}).get("replicas") or 0)
    have_consumers = int((consumer.get("status") or {}).get("availableReplicas") or 0)
    consumers_ok = want_consumers > 0 and have_consumers >= want_consumers
    conds.append(Condition("ConsumersScaled", consumers_ok, "ReplicasAvailable" if consumers_ok else "ScalingUp",
                           f"{have_consumers}/{want_consumers} consumer pods available"))
    return conds, {"replicas": want_ingest, "availableReplicas": have_ingest}, {"replicas": want_consumers}


def shards_condition(stopped: int) -> Condition:
    """ShardsRunning: False while a consumer has stopped a shard (an error that is not the data's: the table is
    gone, credentials refused); its /readyz and logs say which shard and why, a restart of the pod resumes it."""
    if stopped:
        return Condition("ShardsRunning", False, "ShardStopped",
                         f"{stopped} shard(s) stopped by the consumers: see their logs (shard_stopped) and /readyz; "
                         "fix the cause, then restart the consumer pods")
    return Condition("ShardsRunning", True, "Running", "no consumer reports a stopped shard")


def _dag_condition(pipeline: Pipeline) -> Condition:
    """DagPublished: what is true is that the DAG definition is in its ConfigMap; whether Airflow registered
    a DAG from it is Airflow's to say (the operator does not call Airflow)."""
    if pipeline.spec.transform.enabled:
        return Condition("DagPublished", True, "ConfigMapApplied",
                         f"DAG definition published in ConfigMap {manifests.child_name(pipeline, 'dag')} "
                         "(registration in Airflow is not checked)")
    return Condition("DagPublished", True, "NotRequested", "spec.transform.enabled is false")


def _children_condition(not_owned: list[str], total: int) -> Condition:
    if not_owned:
        return Condition("ChildrenOwned", False, "NotOwned",
                         f"{', '.join(not_owned)} exist(s) and are not this pipeline's (no owner reference to it): "
                         "left unchanged; rename or remove them")
    return Condition("ChildrenOwned", True, "Applied", f"{total} children applied")


def _write_status(body: Any, status: Any, patch: Any, pipeline_name: str, namespace: str,
                  generation: int, parts: list[Condition]) -> None:
    """Conditions (Ready first), phase, observedGeneration; an Event for every condition that changed."""
    old = list(_previous(status, "conditions") or [])
    all_conditions = [ready_condition(parts), *parts]
    merged = merge_conditions(old, all_conditions, generation, now_iso())
    phase = phase_of(parts, _previous(status, "phase"))
    patch.status["conditions"] = merged
    patch.status["phase"] = phase
    patch.status["observedGeneration"] = generation
    patch.status["message"] = merged[0]["message"]
    metrics.PIPELINES.labels(namespace, pipeline_name).set(1 if merged[0]["status"] == "True" else 0)
    for cond in transitions(old, merged):
        kind = "Normal" if cond["status"] == "True" or cond["reason"] == "NotRequested" else "Warning"
        kopf.event(body, type=kind, reason=f"{cond['type']}{cond['status']}",
                   message=f"{cond['reason']}: {cond['message']}"[:1000])
    if phase != _previous(status, "phase"):
        kopf.event(body, type="Warning" if phase in ("Degraded", "Failed") else "Normal", reason=f"Phase{phase}",
                   message=f"phase is now {phase}")


@kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile")
@kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile")
@kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile")
def reconcile(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, reason: str,
              logger: _Logger, **_: Any) -> None:
    """Bring the children, stream and tables in line with the spec; idempotent (safe on every event)."""
    started = time.monotonic()
    cause = str(reason)
    try:
        _reconcile(body, status, patch, memo, logger)
    except kopf.TemporaryError:
        metrics.RECONCILES.labels(cause, "retry").inc()
        raise
    except Exception:
        metrics.RECONCILES.labels(cause, "error").inc()
        raise
    else:
        metrics.RECONCILES.labels(cause, "ok").inc()
    finally:
        metrics.DURATION.labels(cause).observe(time.monotonic() - started)


def _reconcile(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo,
               logger: _Logger) -> None:
    op: OperatorSettings = memo.op
    kube: Kube = memo.kube
    meta = body["metadata"]
    generation = int(meta.get("generation") or 1)
    if not _previous(status, "phase"):
        # Say so at once: provisioning (waiting for the stream to be ACTIVE) can take a while.
        kube.request("PATCH", object_path(API_VERSION, PLURAL, meta["namespace"], meta["name"]) + "/status",
                     body={"status": {"phase": "Pending", "message": "reconciling for the first time"}},
                     content_type="application/merge-patch+json")
    pipeline: Pipeline | None = None
    try:
        pipeline = Pipeline.from_body(body)
        problems = check_spec(pipeline.spec, op.allowed_catalog_uris, op.allowed_kinesis_endpoints)
    except ValidationError as exc:
        problems = [f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    if pipeline is None or problems:  # nothing is applied for a spec the services could not run
        metrics.ERRORS.labels("spec").inc()
        parts = [Condition("SpecValid", False, "InvalidSpec", "; ".join(problems))]
        _write_status(body, status, patch, meta["name"], meta["namespace"], generation, parts)
        logger.warning("invalid spec, nothing applied: %s", "; ".join(problems))
        return

    parts = [Condition("SpecValid", True, "SpecValid", "the spec passed the operator's checks")]
    stream_cond, _state = _stream_condition(pipeline, op, status, patch)
    parts.append(stream_cond)
    parts.append(_table_condition(pipeline, kube, op, status, patch))

    monitoring = kube.has_monitoring_crds()
    opts = manifests.BuildOptions(image=op.services_image, analytics_image=op.analytics_image,
                                  consumer_replicas=_initial_consumers(pipeline, status),
                                  monitoring_crds=monitoring)
    children = manifests.build_children(pipeline, opts)
    not_owned: list[str] = []
    try:
        for child in children:
            try:
                kube.apply(child)
            except NotOwnedError as exc:
                not_owned.append(str(exc))
                continue
            metrics.APPLIES.labels(child["kind"]).inc()
        removed = kube.prune(pipeline.namespace, pipeline.name, pipeline.uid,
                             {manifests.child_key(c) for c in children}, monitoring)
    except ApiException as exc:
        metrics.ERRORS.labels("apply").inc()
        raise kopf.TemporaryError(f"applying children failed: {exc.status} {exc.reason}", delay=5) from exc
    if removed:
        kopf.event(body, type="Normal", reason="ChildrenPruned", message=f"removed {', '.join(removed)}")
    logger.info("applied %d children (monitoring CRDs: %s)", len(children), monitoring)

    parts.append(_children_condition(not_owned, len(children)))
    availability, ingest_status, consumer_status = _availability(pipeline, kube)
    parts.extend(availability)
    parts.append(_dag_condition(pipeline))
    patch.status["configHash"] = manifests.config_hash(pipeline)
    patch.status["ingest"] = ingest_status
    patch.status["consumers"] = {**consumer_status, "desiredReplicas": opts.consumer_replicas}
    _write_status(body, status, patch, pipeline.name, pipeline.namespace, generation, parts)
    if stream_cond.ok is None:
        # Kinesis did not answer: everything else is applied; look again soon.
        raise kopf.TemporaryError(stream_cond.message, delay=10)


# ------------------------------------------------------------------------------------------------- monitor


class _StatusPatch:
    """What the monitor wants to change in .status (merge patch), in the shape `_write_status` fills."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}


@kopf.daemon(GROUP, VERSION, PLURAL, id="monitor", cancellation_polling=0.5)
def monitor(stopped: kopf.DaemonStopped, name: str, namespace: str | None, memo: kopf.Memo, logger: _Logger,
            **_: Any) -> None:
    """One loop per pipeline: every monitor interval, read the pipeline afresh, scale the consumers on lag and
    refresh availability. Ends when the pipeline is gone (it carries no finalizer unless it needs cleanup, so
    kopf may not get the chance to stop this daemon itself)."""
    op: OperatorSettings = memo.op
    kube: Kube = memo.kube
    path = object_path(API_VERSION, PLURAL, namespace or "", name)
    stopped.wait(op.monitor_initial_delay_seconds)
    while not stopped:
        try:
            obj = kube.get(path)
            if obj is None or obj["metadata"].get("deletionTimestamp"):
                metrics.forget_pipeline(namespace or "", name)
                return
            patch = _StatusPatch()
            monitor_once(obj, obj.get("status") or {}, patch, op, kube, logger)
            if not _contained(patch.status, obj.get("status") or {}):
                kube.request("PATCH", f"{path}/status", body={"status": patch.status},
                             content_type="application/merge-patch+json")
        except Exception as exc:  # noqa: BLE001 - one failed tick (API, Kinesis, network) must not end the loop
            metrics.ERRORS.labels("monitor").inc()
            logger.warning("monitoring %s/%s failed, next try in %.0fs: %s", namespace, name,
                           op.monitor_interval_seconds, exc)
        stopped.wait(op.monitor_interval_seconds)


def _contained(want: dict[str, Any], have: dict[str, Any]) -> bool:
    """True when merge-patching `want` onto `have` changes nothing (then the monitor writes nothing)."""
    for key, value in want.items():
        if value is None:
            if have.get(key) is not None:
                return False
        elif isinstance(value, dict):
            if not isinstance(have.get(key), dict) or not _contained(value, have[key]):
                return False
        elif have.get(key) != value:
            return False
    return True


def monitor_once(body: Any, status: Any, patch: Any, op: OperatorSettings, kube: Kube, logger: _Logger) -> None:
    """Scale the consumers on lag and refresh availability; does nothing before the first reconcile."""
    conditions = list(_previous(status, "conditions") or [])
    if not conditions or _previous(status, "observedGeneration") is None:
        return
    if any(c.get("type") == "SpecValid" and c.get("status") == "False" for c in conditions):
        return
    pipeline = Pipeline.from_body(body)
    if _previous(status, "observedGeneration") != pipeline.generation:
        return  # a reconcile of the new spec is under way; its status write comes first
    consumer_spec = pipeline.spec.consumer
    selector = manifests.selector(pipeline, "consumer")
    scrape = scrape_consumers(kube.pod_ips(pipeline.namespace, selector), consumer_spec.metrics_port,
                              op.lag_metric, op.lag_scrape_timeout_seconds)
    lag = scrape.lag_seconds
    for error in scrape.errors:
        logger.warning("lag scrape failed: %s", error)
    open_shards: int | None = None
    try:
        open_shards = provision.open_shard_count(provision.kinesis_client(pipeline), pipeline.stream_name)
    except (ClientError, BotoCoreError) as exc:
        logger.warning("open shard count unavailable: %s", exc)
    deployment = kube.deployment(pipeline.namespace, manifests.child_name(pipeline, "consumer"))
    if deployment is None:
        return
    current = int(deployment["spec"].get("replicas") or 0)
    pending_since = _previous(status, "consumers", "pendingSince")
    decision = scaling.decide(scaling.ScaleInput(
        current=current, lag_seconds=lag, target_lag_seconds=consumer_spec.target_lag_seconds,
        min_replicas=consumer_spec.min_replicas, max_replicas=consumer_spec.max_replicas,
        open_shards=open_shards, now=time.time(),
        stabilization_seconds=consumer_spec.scale_down_stabilization_seconds,
        pending_replicas=_previous(status, "consumers", "pendingReplicas"),
        pending_since=float(pending_since) if pending_since else None,
    ))
    consumers: dict[str, Any] = {
        "desiredReplicas": decision.replicas,
        "lagSeconds": None if lag is None else round(lag, 1),
        "lagSource": "metrics",
        "stoppedShards": scrape.stopped_shards,
        "pendingReplicas": decision.pending_replicas,
        "pendingSince": None if decision.pending_since is None else f"{decision.pending_since:.3f}",
    }
    if lag is not None:
        metrics.LAG.labels(pipeline.namespace, pipeline.name).set(lag)
    if decision.changed(current):
        opts = manifests.BuildOptions(image=op.services_image, analytics_image=op.analytics_image,
                                      consumer_replicas=decision.replicas, monitoring_crds=False)
        kube.apply(manifests.consumer_deployment(pipeline, opts))  # NotOwnedError: this tick fails, nothing changes
        metrics.SCALINGS.labels(decision.reason).inc()
        consumers["lastScaleTime"] = now_iso()
        message = (f"consumers {current} -> {decision.replicas} ({decision.reason}; lag "
                   f"{'unknown' if lag is None else f'{lag:.1f}'}s, target {consumer_spec.target_lag_seconds}s, "
                   f"open shards {open_shards if open_shards is not None else 'unknown'})")
        kopf.event(body, type="Normal", reason="ConsumersScaled", message=message)
        logger.info(message)
    if open_shards is not None:
        patch.status["stream"] = {"openShards": open_shards}
    parts = [Condition(c["type"], {"True": True, "False": False}.get(c["status"]), c.get("reason", ""),
                       c.get("message", "")) for c in conditions if c["type"] not in
             ("Ready", "IngestAvailable", "ConsumersScaled", "ShardsRunning", "DagPublished", "DagDeployed")]
    availability, ingest_status, consumer_status = _availability(pipeline, kube)
    if decision.changed(current):
        availability = [c if c.type != "ConsumersScaled" else
                        Condition("ConsumersScaled", False, "Scaling", f"scaling to {decision.replicas}")
                        for c in availability]
    order = ("SpecValid", "StreamReady", "TableReady", "ChildrenOwned", "IngestAvailable", "ConsumersScaled",
             "ShardsRunning", "DagPublished")
    merged = {c.type: c for c in [*parts, *availability, shards_condition(scrape.stopped_shards),
                                  _dag_condition(pipeline)]}
    patch.status["ingest"] = ingest_status
    patch.status["consumers"] = {**consumers, "replicas": decision.replicas if decision.changed(current)
                                 else consumer_status["replicas"]}
    _write_status(body, status, patch, pipeline.name, pipeline.namespace,
                  int(_previous(status, "observedGeneration") or pipeline.generation),
                  [merged[t] for t in order if t in merged])


def _daemon_without_finalizer(handler_id: str) -> None:
    """kopf puts its finalizer on every object that has a daemon, so it can stop the daemon before the object
    goes. `monitor` stops by itself when its pipeline is gone, and a finalizer must only be there while external
    resources need cleanup (deletionPolicy: Delete): so this daemon is registered as not requiring one. kopf
    offers no public switch for that; the handler record is replaced with the flag off (covered by the tests)."""
    spawning: Any = kopf.get_default_registry()._spawning
    spawning._handlers = [dataclasses.replace(h, requires_finalizer=False) if h.id == handler_id else h
                          for h in spawning._handlers]


_daemon_without_finalizer("monitor")


# ------------------------------------------------------------------------------------------------- delete


def _needs_cleanup(spec: kopf.Spec, **_: Any) -> bool:
    """The finalizer is wanted on every Delete pipeline from its first event: kopf adds it before the create
    handler runs. Waiting for status to record a creation left a window in which a deletion skipped the cleanup
    and leaked the stream and tables just made."""
    return bool(spec.get("deletionPolicy", "Retain") == "Delete")


def _stop_writers(pipeline: Pipeline, kube: Kube) -> None:
    """Before anything is deleted: consumers scaled to zero (no commit lands in a table being dropped) and the
    maintenance CronJob suspended; retried until no consumer pod is left."""
    ns = pipeline.namespace
    consumer = manifests.child_name(pipeline, "consumer")
    if kube.deployment(ns, consumer) is not None:
        kube.request("PATCH", object_path("apps/v1", "deployments", ns, consumer) + "/scale",
                     body={"spec": {"replicas": 0}}, content_type="application/merge-patch+json")
    cronjob = object_path("batch/v1", "cronjobs", ns, manifests.child_name(pipeline, "maintenance"))
    if kube.get(cronjob) is not None:
        kube.request("PATCH", cronjob, body={"spec": {"suspend": True}}, content_type="application/merge-patch+json")
    left = kube.pod_names(ns, manifests.selector(pipeline, "consumer"))
    if left:
        raise kopf.TemporaryError(f"waiting for consumer pods to stop before deleting: {', '.join(left)}", delay=5)


@kopf.on.delete(GROUP, VERSION, PLURAL, id="cleanup", when=_needs_cleanup)
def cleanup(body: kopf.Body, status: kopf.Status, memo: kopf.Memo, logger: _Logger, **_: Any) -> None:
    """deletionPolicy Delete: stop the writers, then remove exactly what status records the operator created
    (the stream with its ARN, the tables with their UUIDs, the namespace it made); children go by GC."""
    kube: Kube = memo.kube
    op: OperatorSettings = memo.op
    pipeline = Pipeline.from_body(body)
    _stop_writers(pipeline, kube)
    done = []
    arn = _previous(status, "stream", "arn")
    if _previous(status, "stream", "createdByOperator") and arn:
        name = _previous(status, "stream", "name") or pipeline.stream_name
        try:
            if provision.delete_stream(provision.kinesis_client(pipeline), name, arn):
                done.append(f"stream {name}")
        except provision.ProvisioningError as exc:
            kopf.event(body, type="Warning", reason="CleanupSkipped", message=str(exc)[:1000])
        except (ClientError, BotoCoreError) as exc:
            metrics.ERRORS.labels("cleanup").inc()
            raise kopf.TemporaryError(f"deleting stream {name!r} failed: {exc}", delay=10) from exc
    recorded = {t["name"]: t["uuid"] for t in _previous(status, "tables", "createdTables") or []}
    if recorded:
        namespace = _previous(status, "tables", "namespace") if _previous(status, "tables", "namespaceCreated") \
            else None
        try:
            done.extend(provision.drop_tables(_catalog(pipeline, kube, op), recorded, namespace))
        except provision.ProvisioningError as exc:
            kopf.event(body, type="Warning", reason="CleanupSkipped", message=str(exc)[:1000])
    metrics.forget_pipeline(pipeline.namespace, pipeline.name)
    logger.info("deletionPolicy Delete: removed %s", ", ".join(done) or "nothing (already gone)")
