"""The deployed shape, read from template.yaml: alarms that can reach the
operator, queues that keep a customer's order, and custom metrics that the
code really emits under the names and dimensions the alarms watch."""

import pathlib
import re

import pytest
from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template():
    parsed, matches = decode(str(ROOT / "template.yaml"))
    assert not matches, matches
    return parsed


def resources(template, kind):
    return {
        name: r for name, r in template["Resources"].items() if r["Type"] == kind
    }


def refs(value):
    """Logical ids a value points to with Ref."""
    if isinstance(value, dict):
        if "Ref" in value:
            return {value["Ref"]}
        return set().union(*(refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(refs(v) for v in value)) if value else set()
    return set()


def emitted_metrics():
    """(name, frozenset of dimension names) for every metric the code emits.

    Every metric carries the global Stack and Function dimensions
    (src/telemetry.rs); labels given at the call site add theirs."""
    telemetry = (ROOT / "src/telemetry.rs").read_text()
    assert '.with_dimension("Stack"' in telemetry
    assert '.with_dimension("Function"' in telemetry
    found = set()
    pattern = re.compile(
        r'metrics::(?:counter|gauge|histogram)!\(\s*"([a-z_]+)"((?:\s*,\s*"[a-z_]+"\s*=>[^,)]+)*)'
    )
    for path in (ROOT / "src").rglob("*.rs"):
        for name, labels in pattern.findall(path.read_text()):
            dims = {"Stack", "Function"} | set(re.findall(r'"([a-z_]+)"\s*=>', labels))
            found.add((name, frozenset(dims)))
    return found


def test_the_alarm_topic_can_be_published_to_by_cloudwatch(template):
    topics = resources(template, "AWS::SNS::Topic")
    assert len(topics) == 1
    (topic_name, topic), = topics.items()
    key_ref = topic["Properties"].get("KmsMasterKeyId")
    assert key_ref is not None, "encrypt the topic"
    assert key_ref != "alias/aws/sns", "CloudWatch cannot use the AWS-managed SNS key"
    (key_name,) = refs(key_ref)
    key = template["Resources"][key_name]
    assert key["Type"] == "AWS::KMS::Key"
    granted = set()
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        principal = statement.get("Principal", {})
        if isinstance(principal, dict) and principal.get("Service") == "cloudwatch.amazonaws.com":
            if statement["Effect"] == "Allow":
                actions = statement["Action"]
                granted |= set(actions if isinstance(actions, list) else [actions])
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= granted, granted
    for name, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        assert topic_name in refs(props.get("AlarmActions", [])), f"{name} pages nobody"
        assert topic_name in refs(props.get("OKActions", [])), f"{name} never says it is over"


def test_queues_are_fifo_per_customer_and_kept(template):
    queues = resources(template, "AWS::SQS::Queue")
    assert len(queues) == 2
    for name, queue in queues.items():
        props = queue["Properties"]
        assert props.get("FifoQueue") is True, name
        assert props.get("DeduplicationScope") == "messageGroup", name
        assert props.get("FifoThroughputLimit") == "perMessageGroupId", name
        assert queue.get("DeletionPolicy") == "Retain", name
    main = template["Resources"]["ConversationQueue"]["Properties"]
    assert main["MessageRetentionPeriod"] == 1209600
    assert main["RedrivePolicy"]["maxReceiveCount"] >= 30
    for name, fn in resources(template, "AWS::Serverless::Function").items():
        for event in fn["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                assert "MaximumBatchingWindowInSeconds" not in event["Properties"], name
                assert event["Properties"]["BatchSize"] <= 10


def test_every_custom_metric_alarm_watches_what_the_code_emits(template):
    emitted = emitted_metrics()
    names = {name for name, _ in emitted}
    watched = 0
    for name, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        if props.get("Namespace") != "WitiOpSalesforce":
            continue
        watched += 1
        metric = props["MetricName"]
        dims = frozenset(d["Name"] for d in props["Dimensions"])
        assert metric in names, f"{name}: no code emits {metric}"
        assert (metric, dims) in emitted, f"{name}: {metric} is emitted with other dimensions than {sorted(dims)}"
    assert watched >= 8


@pytest.mark.parametrize(
    "alarm",
    [
        "WebhookUnauthorizedAlarm",
        "WebhookInvalidEventAlarm",
        "WebhookQueueUnavailableAlarm",
        "ApiServerErrorsAlarm",
        "WebhookErrorsAlarm",
        "OldestMessageAgeAlarm",
        "SalesforceLoginsRefusedAlarm",
        "SalesforceAllowanceExhaustedAlarm",
        "WebhookHeartbeatAlarm",
        "DeadLetterQueueNotEmptyAlarm",
        "WorkerErrorsAlarm",
    ],
)
def test_the_silent_failures_page(template, alarm):
    assert template["Resources"][alarm]["Type"] == "AWS::CloudWatch::Alarm"


def test_the_heartbeat_treats_silence_as_trouble(template):
    props = template["Resources"]["WebhookHeartbeatAlarm"]["Properties"]
    assert props["TreatMissingData"] == "breaching"


def test_worker_errors_are_a_rate_over_several_periods(template):
    props = template["Resources"]["WorkerErrorsAlarm"]["Properties"]
    assert props["EvaluationPeriods"] >= 3 and props["DatapointsToAlarm"] >= 2
    assert any("Expression" in m for m in props["Metrics"])


def test_the_links_route_exists_and_is_throttled(template):
    fn = template["Resources"]["LinksFunction"]
    (event,) = fn["Properties"]["Events"].values()
    assert event["Properties"]["Method"] == "GET"
    assert event["Properties"]["Path"] == "/witiop/cases/{conversation_id}"
    api = template["Resources"]["WebhookApi"]["Properties"]
    assert "GET /witiop/cases/{conversation_id}" in api["RouteSettings"]
