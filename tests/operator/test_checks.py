"""What the CRD schema cannot check, the operator does: every problem names its field."""

from __future__ import annotations

import copy

from eventpipe_operator.checks import check_schema, check_spec
from eventpipe_operator.spec import Pipeline
from op_helpers import body, shop_schema


def test_the_shop_schema_passes() -> None:
    assert check_schema(shop_schema()) == []
    assert check_spec(Pipeline.from_body(body()).spec) == []
    assert check_schema(None) == []


def test_each_problem_is_reported_with_its_field() -> None:
    schema = copy.deepcopy(shop_schema())
    schema["fields"][7]["pattern"] = "^[unclosed"
    schema["fields"][4]["event_types"] = ["purchase", "refund"]
    schema["fields"][6]["enum"] = ["EUR", 3]
    schema["fields"].append({"path": "properties.amount", "type": "string", "event_types": ["page_view"]})
    schema["promote"].append({"path": "properties.page", "column": "event_id", "type": "string"})
    schema["promote"].append({"path": "properties.quantity", "column": "qty", "type": "boolean"})
    problems = check_schema(schema)
    text = "\n".join(problems)
    assert "spec.schema.fields[7].pattern: not a valid regular expression" in text
    assert "spec.schema.fields[4].event_types[1]: 'refund' is not in spec.schema.event_types" in text
    assert "spec.schema.fields[6].enum[1]: 3 is not a string" in text
    assert "spec.schema.fields[13].type: 'properties.amount' is 'number' elsewhere, not 'string'" in text
    assert "spec.schema.promote[4].column: 'event_id' is a column raw_events already has" in text
    assert "spec.schema.promote[5].type: a integer field cannot be promoted to 'boolean'" in text
    assert len(problems) == 6


def test_duplicates_and_bad_bounds() -> None:
    schema = {"event_types": ["a", "a"], "fields": [
        {"path": "user_id", "type": "string"}, {"path": "user_id", "type": "string"},
        {"path": "properties.n", "type": "number", "min": 5, "max": 1},
        {"path": "properties.s", "type": "boolean", "max_length": 3}],
        "promote": [{"path": "properties.n", "column": "n", "type": "double"},
                    {"path": "properties.n", "column": "n", "type": "double"}], "extra": 1}
    problems = check_schema(schema)
    assert "spec.schema: unknown keys ['extra']" in problems
    assert "spec.schema.event_types: duplicate event types" in problems
    assert "spec.schema.fields[1].path: 'user_id' is declared twice for the same event types" in problems
    assert "spec.schema.fields[2]: min 5 is greater than max 1" in problems
    assert "spec.schema.fields[3]: pattern/max_length apply only to string fields" in problems
    assert "spec.schema.promote[1].column: 'n' is promoted twice" in problems


def test_resource_quantities_are_checked() -> None:
    spec = Pipeline.from_body(body({"ingest": {"resources": {"limits": {"memory": "lots"}}}})).spec
    assert check_spec(spec) == ["spec.ingest.resources.limits.memory: 'lots' is not a Kubernetes quantity"]
