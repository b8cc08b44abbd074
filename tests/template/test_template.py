"""The template keeps its promises: alarms that arrive, queues that lose nothing.

Read with cfn-lint's own YAML loader (it understands `!Ref`, `!Sub`, `!GetAtt`).
The checks:

- every alarm notifies the alarm topic when it fires and when it clears,
  except the one watching that topic's own deliveries, which pages through
  a second topic with its own subscription; no topic depends on a KMS key,
  and CloudWatch may publish to both;
- the worker's health excludes the expected waits, a stuck trigger pages,
  and the Salesforce calls in flight stay within the org's concurrent limit;
- nobody may purge a queue; no X-Ray; every taggable resource carries the
  project tag; every function is called through its `live` alias and the
  webhook's releases go out gradually, rolled back by its alarms;
- both queues are FIFO, the worker's trigger has no batching window, and
  `maxReceiveCount` outlasts a 72-hour outage with the backoff the worker
  applies (recomputed here from the template's own parameter ranges);
- queues and secrets are retained, and no deploy rewrites a secret's value;
- every alarm of the runbook exists; attachments fit the worker's /tmp; the
  case-link route exists and is throttled;
- every custom metric an alarm or the dashboard names is in the metric
  contract, with exactly its dimensions, and the Rust code under `src/`
  emits every metric of the contract.
"""

import json
import os
import re
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
# Overridable, to check that a broken template or code fails these tests.
TEMPLATE = Path(os.environ.get("TEMPLATE_UNDER_TEST", ROOT / "template.yaml"))
SRC = Path(os.environ.get("SRC_UNDER_TEST", ROOT / "src"))

NAMESPACE = "WitiOpSalesforce"
TOPIC = "AlarmTopic"
BACKSTOP = "BackstopTopic"
PROJECT_TAG = ("Project", "witiop-salesforce")
QUEUE = "ConversationQueue"
DLQ = "ConversationDeadLetterQueue"
STACK = "<stack>"

# --- The metric contract ------------------------------------------------------
# Every custom metric carries exactly the dimensions Stack (the stack's name)
# and Function, plus its own label where it has one.
REJECTION_REASONS = {
    "unauthorized",
    "invalid_event",
    "payload_too_large",
    "method_not_allowed",
    "queue_unavailable",
}
SALESFORCE_ERROR_CODES = {
    "INVALID_SESSION_ID",
    "REQUEST_LIMIT_EXCEEDED",
    "SERVER_UNAVAILABLE",
    "UNABLE_TO_LOCK_ROW",
    "other",
}
WEBHOOK, WORKER, LINKS = "webhook", "worker", "links"
# The metrics without a label, by the one function that emits each.
UNLABELLED = {
    WEBHOOK: ["witiop_closes_received", "conversations_queued", "events_ignored"],
    WORKER: [
        "cases_created", "comments_created", "attachments_uploaded", "case_lag_seconds",
        "conversations_retried", "conversations_backed_off", "salesforce_api_calls",
        "salesforce_api_usage_ratio", "salesforce_logins", "salesforce_logins_refused",
        "case_fields_left_out", "conversations_failed_unexpectedly",
    ],
    LINKS: ["links_salesforce_calls"],
}
# name: (functions, label, label values or None for an open set)
CONTRACT = {
    **{name: ({function}, None, None) for function, names in UNLABELLED.items() for name in names},
    "webhook_rejections": ({WEBHOOK}, "reason", REJECTION_REASONS),
    "conversations_dead_lettered": ({WORKER}, "code", None),
    "salesforce_errors": ({WORKER}, "code", SALESFORCE_ERROR_CODES),
    "cold_starts": ({WEBHOOK, WORKER, LINKS}, None, None),
}
# Where the code of each function lives (the Salesforce client is the worker's).
FUNCTION_SOURCES = {
    WEBHOOK: ["webhook", "bin/webhook.rs"],
    WORKER: ["worker", "salesforce", "bin/worker.rs"],
    LINKS: ["links", "bin/links.rs"],
}


# --- Reading the template -----------------------------------------------------
@pytest.fixture(scope="module")
def template():
    return cfn_yaml.load(str(TEMPLATE))


def resources(template, kind):
    return {
        name: r for name, r in template["Resources"].items() if r.get("Type") == kind
    }


def props(resource):
    return resource.get("Properties", {})


def refers_to(value, logical_id):
    """`!Ref id`, `!GetAtt id.X`, or a `!Sub` naming `${id}` / `${id.X}`."""
    if not isinstance(value, dict):
        return False
    if value.get("Ref") == logical_id:
        return True
    get_att = value.get("Fn::GetAtt")
    if get_att is not None:
        if isinstance(get_att, str):
            get_att = get_att.split(".", 1)
        return get_att[0] == logical_id
    return False


def as_list(value):
    return value if isinstance(value, list) else [value]


def dimension_value(value):
    if isinstance(value, dict) and value.get("Ref") == "AWS::StackName":
        return STACK
    return value


def alarm_metrics(alarm):
    """(namespace, metric name, {dimension: value}) of each metric an alarm reads."""
    p = props(alarm)
    found = []
    if "MetricName" in p:
        dims = {d["Name"]: dimension_value(d["Value"]) for d in p.get("Dimensions", [])}
        found.append((p.get("Namespace"), p["MetricName"], dims))
    for query in p.get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric")
        if metric:
            dims = {
                d["Name"]: dimension_value(d["Value"]) for d in metric.get("Dimensions", [])
            }
            found.append((metric.get("Namespace"), metric["MetricName"], dims))
    return found


def substituted(template, sub):
    """A `!Sub` string with parameters at their defaults and the rest as markers."""
    text = sub["Fn::Sub"]
    if isinstance(text, list):
        text = text[0]
    parameters = template.get("Parameters", {})

    def value(match):
        name = match.group(1)
        if name == "AWS::StackName":
            return STACK
        if name in parameters:
            return str(parameters[name]["Default"])
        return f"<{name}>"

    return re.sub(r"\$\{([^!}][^}]*)\}", value, text)


def dashboard_body(template):
    (dashboard,) = resources(template, "AWS::CloudWatch::Dashboard").values()
    return json.loads(substituted(template, props(dashboard)["DashboardBody"]))


def dashboard_metrics(template):
    """(namespace, metric name, {dimension: value}) of every dashboard metric line."""
    found = []
    for widget in dashboard_body(template)["widgets"]:
        for line in widget.get("properties", {}).get("metrics", []):
            fields = [f for f in line if not isinstance(f, dict)]
            if len(fields) < 2:
                continue  # an expression
            namespace, name, rest = fields[0], fields[1], fields[2:]
            assert "." not in (namespace, name) and "." not in rest, (
                f"spell dashboard metric lines out in full: {line}"
            )
            found.append((namespace, name, dict(zip(rest[::2], rest[1::2]))))
    return found


# --- Alarms arrive --------------------------------------------------------------
def watches_delivery_of(alarm, topic):
    """The alarm reads the SNS delivery metrics of `topic`."""
    return any(
        ns == "AWS/SNS" and n == "NumberOfNotificationsFailed" and refers_to(d.get("TopicName"), topic)
        for ns, n, d in alarm_metrics(alarm)
    )


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert alarms
    wrong = []
    for name, alarm in alarms.items():
        # The alarm on the alarm topic's own deliveries must not wait on it.
        topic = BACKSTOP if watches_delivery_of(alarm, TOPIC) else TOPIC
        for key in ("AlarmActions", "OKActions"):
            actions = props(alarm).get(key, [])
            if not any(refers_to(a, topic) for a in actions):
                wrong.append(f"{name}.{key} (to {topic})")
        if "TreatMissingData" not in props(alarm):
            wrong.append(f"{name}.TreatMissingData (say what silence means)")
    assert not wrong, f"alarms that would not notify: {wrong}"


def test_no_topic_of_the_pager_depends_on_a_key(template):
    """A disabled or deleted key would make every publish fail: no page."""
    topics = resources(template, "AWS::SNS::Topic")
    assert set(topics) == {TOPIC, BACKSTOP}
    for name, topic in topics.items():
        assert "KmsMasterKeyId" not in props(topic), (
            f"{name} is encrypted: disabling its key would silence every page"
        )


def test_an_undeliverable_alarm_topic_pages_through_the_backstop(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    for watched, other in ((TOPIC, BACKSTOP), (BACKSTOP, TOPIC)):
        watching = [n for n, a in alarms.items() if watches_delivery_of(a, watched)]
        assert len(watching) == 1, f"one alarm on {watched}'s failed deliveries, found {watching}"
        p = props(alarms[watching[0]])
        read = {m[1] for m in alarm_metrics(alarms[watching[0]])}
        assert {"NumberOfMessagesPublished", "NumberOfNotificationsDelivered"} <= read, (
            f"{watching[0]}: pages published and none delivered (no confirmed subscription) count too"
        )
        for key in ("AlarmActions", "OKActions"):
            actions = as_list(p[key])
            assert actions and all(refers_to(a, other) for a in actions), (
                f"{watching[0]}.{key} must notify {other} only, never the topic it watches"
            )
    subscriptions = resources(template, "AWS::SNS::Subscription").values()
    backstop = [s for s in subscriptions if refers_to(props(s)["TopicArn"], BACKSTOP)]
    assert backstop, f"{BACKSTOP} needs its own subscription"
    endpoint = json.dumps(props(backstop[0])["Endpoint"])
    assert "BackstopEmail" in endpoint and "AlarmEmail" in endpoint, (
        "the backstop's address: its own parameter, else the alarm e-mail"
    )


def test_cloudwatch_may_publish_to_both_topics(template):
    allowed = set()
    for policy in resources(template, "AWS::SNS::TopicPolicy").values():
        for s in props(policy)["PolicyDocument"]["Statement"]:
            if (
                s["Effect"] == "Allow"
                and "cloudwatch.amazonaws.com" in principals(s, "Service")
                and "sns:Publish" in as_list(s["Action"])
            ):
                assert "aws:SourceAccount" in json.dumps(s.get("Condition", {})), (
                    "limit CloudWatch's sns:Publish to this account's alarms"
                )
                for topic in (TOPIC, BACKSTOP):
                    if any(refers_to(t, topic) for t in props(policy)["Topics"]) and any(
                        refers_to(r, topic) for r in as_list(s["Resource"])
                    ):
                        allowed.add(topic)
    assert allowed == {TOPIC, BACKSTOP}, f"CloudWatch may publish only to {sorted(allowed)}"


def test_each_topic_has_a_policy_of_its_own(template):
    """One broken policy must not close both paths to the pager."""
    for name, policy in resources(template, "AWS::SNS::TopicPolicy").items():
        assert len(props(policy)["Topics"]) == 1, f"{name} governs more than one topic"


def principals(statement, kind):
    principal = statement.get("Principal", {})
    return as_list(principal.get(kind, [])) if isinstance(principal, dict) else []


# --- Queues lose nothing ------------------------------------------------------------
def test_both_queues_are_fifo_with_high_throughput(template):
    queues = resources(template, "AWS::SQS::Queue")
    assert set(queues) == {QUEUE, DLQ}
    for name, queue in queues.items():
        p = props(queue)
        assert p.get("FifoQueue") is True, f"{name} is not FIFO"
        assert p.get("ContentBasedDeduplication", False) is False, (
            f"{name}: the webhook sends MessageDeduplicationId; no content-based deduplication"
        )
        assert p.get("DeduplicationScope") == "messageGroup", name
        assert p.get("FifoThroughputLimit") == "perMessageGroupId", name
        assert p.get("MessageRetentionPeriod") == 1209600, f"{name}: keep messages 14 days"
    redrive = props(queues[QUEUE])["RedrivePolicy"]
    assert refers_to(redrive["deadLetterTargetArn"], DLQ)


def sqs_triggers(template):
    for name, function in resources(template, "AWS::Serverless::Function").items():
        for event_name, event in props(function).get("Events", {}).items():
            if event.get("Type") == "SQS":
                yield f"{name}.{event_name}", event["Properties"]
    for name, mapping in resources(template, "AWS::Lambda::EventSourceMapping").items():
        yield name, props(mapping)


def test_the_worker_trigger_suits_a_fifo_queue(template):
    triggers = list(sqs_triggers(template))
    assert triggers, "no SQS trigger"
    for name, p in triggers:
        assert "MaximumBatchingWindowInSeconds" not in p, (
            f"{name}: batching windows are not supported for FIFO queues"
        )
        assert 1 <= p.get("BatchSize", 10) <= 10, f"{name}: BatchSize is at most 10 for FIFO"
        assert "ReportBatchItemFailures" in p.get("FunctionResponseTypes", []), name
        assert "MaximumConcurrency" in p.get("ScalingConfig", {}), name


def deliveries(base, cap, horizon, at_least=0):
    """The delivery at which a record failing since delivery 1 is first tried
    at or after `horizon` seconds, every wait at its shortest (equal jitter:
    half of min(base * 2^(n-1), cap), or of `at_least` if longer)."""
    elapsed, n = 0, 1
    while elapsed < horizon:
        wait = max(min(base * 2 ** (n - 1), cap), min(at_least, cap))
        elapsed += wait / 2
        n += 1
    return n


def test_a_72_hour_outage_or_a_day_without_allowance_parks_nothing(template):
    parameters = template["Parameters"]
    base, cap = parameters["RetryBaseSeconds"], parameters["RetryCapSeconds"]
    assert base["Default"] == 60 and cap["Default"] == 43200
    assert cap["MaxValue"] <= 43200, "SQS hides a message for at most 12 hours"
    worst = max(
        deliveries(base["MinValue"], cap["MinValue"], 72 * 3600),
        deliveries(base["MinValue"], cap["MinValue"], 24 * 3600, at_least=3600),
        deliveries(base["Default"], cap["Default"], 72 * 3600),
    )
    max_receive = int(props(template["Resources"][QUEUE])["RedrivePolicy"]["maxReceiveCount"])
    crashes = 5  # a crash does not back off: margin for a few
    assert max_receive >= worst + crashes, (
        f"maxReceiveCount {max_receive}: a 72-hour outage takes up to {worst} deliveries "
        f"with the parameters allowed, plus {crashes} crashes"
    )
    assert deliveries(60, 43200, 72 * 3600) == 22  # the arithmetic in the template's comment


def env_of(template, function):
    return props(template["Resources"][function])["Environment"]["Variables"]


def test_the_worker_backs_off_in_the_main_queue_and_parks_in_the_fifo_dlq(template):
    env = env_of(template, "WorkerFunction")
    assert refers_to(env["QUEUE_URL"], QUEUE)
    assert refers_to(env["DLQ_URL"], DLQ)
    assert env["RETRY_BASE_SECONDS"] == {"Ref": "RetryBaseSeconds"}
    assert env["RETRY_CAP_SECONDS"] == {"Ref": "RetryCapSeconds"}
    policies = props(template["Resources"]["WorkerFunction"])["Policies"]
    statements = [s for p in policies if "Statement" in p for s in p["Statement"]]
    assert any(
        "sqs:ChangeMessageVisibility" in as_list(s["Action"])
        and any(refers_to(r, QUEUE) for r in as_list(s["Resource"]))
        for s in statements
    ), "the worker needs sqs:ChangeMessageVisibility on the main queue"
    assert any(
        refers_to(p.get("SQSSendMessagePolicy", {}).get("QueueName"), DLQ) for p in policies
    ), "the worker sends to the DLQ"
    assert refers_to(env_of(template, "WebhookFunction")["QUEUE_URL"], QUEUE)


def test_attachments_fit_the_worker_tmp(template):
    parameters = template["Parameters"]
    worker = props(template["Resources"]["WorkerFunction"])
    assert env_of(template, "WorkerFunction")["MAX_ATTACHMENT_BYTES"] == {"Ref": "MaxAttachmentBytes"}
    tmp_bytes = worker.get("EphemeralStorage", {}).get("Size", 512) * 1024 * 1024
    most = parameters["RecordConcurrency"]["MaxValue"] * parameters["MaxAttachmentBytes"]["MaxValue"]
    assert most <= tmp_bytes, f"{most} bytes of attachments at once, /tmp holds {tmp_bytes}"


def test_the_links_route_exists_and_is_throttled(template):
    (event,) = props(template["Resources"]["LinksFunction"])["Events"].values()
    assert event["Type"] == "HttpApi" and refers_to(event["Properties"]["ApiId"], "WebhookApi")
    assert event["Properties"]["Method"] == "GET"
    assert event["Properties"]["Path"] == "/witiop/cases/{conversation_id}"
    route = props(template["Resources"]["WebhookApi"])["RouteSettings"]["GET /witiop/cases/{conversation_id}"]
    assert route["ThrottlingRateLimit"] == {"Ref": "LinksRateLimit"}
    assert route["ThrottlingBurstLimit"] == {"Ref": "LinksRateLimit"}
    rate = template["Parameters"]["LinksRateLimit"]
    assert rate["Default"] <= rate["MaxValue"] <= 20, "the links route stays throttled"


# --- The links function's Salesforce budget ------------------------------------
# An Enterprise org's daily allowance before per-licence additions, and the
# share of it links may take whatever is opened ("API Request Limits and
# Allocations"); Salesforce's concurrent long-running requests start at 20 s.
ORG_DAILY_CALLS = 100_000
LINKS_SHARE = 0.20
LONG_RUNNING_SECONDS = 20


def link_limits():
    """The deployed LinkLimits of src/links/mod.rs: (lookup s, capacity, refill s)."""
    code = (SRC / "links" / "mod.rs").read_text(encoding="utf-8")
    block = code[code.index("impl Default for LinkLimits") :]
    block = block[: block.index("\n}\n")]
    lookup = int(re.search(r"lookup_timeout:\s*Duration::from_secs\((\d+)\)", block).group(1))
    capacity = int(re.search(r"capacity:\s*(\d+)", block).group(1))
    every = int(re.search(r"every:\s*Duration::from_secs\((\d+)\)", block).group(1))
    return lookup, capacity, every


def test_no_link_traffic_can_exceed_the_links_budget(template):
    function = props(template["Resources"]["LinksFunction"])
    instances = function["ReservedConcurrentExecutions"]
    assert isinstance(instances, int) and 1 <= instances <= 5, "reserved concurrency caps the instances"
    lookup, capacity, every = link_limits()
    # A full bucket for every instance every hour, on top of the refill.
    per_day = instances * (86_400 // every + 24 * capacity)
    assert per_day <= LINKS_SHARE * ORG_DAILY_CALLS, f"{per_day} calls a day"
    assert lookup < LONG_RUNNING_SECONDS, "a links call never counts as long-running"
    assert lookup * 2 < function["Timeout"], "a hanging lookup ends well inside the function"


def test_the_links_calls_alarm_fires_before_the_budget_is_spent(template):
    name, alarm = alarm_named(template, "links Salesforce calls")
    p = props(alarm)
    instances = props(template["Resources"]["LinksFunction"])["ReservedConcurrentExecutions"]
    _, _, every = link_limits()
    ceiling = instances * p["Period"] // every
    assert p["Statistic"] == "Sum" and p["ComparisonOperator"] == "GreaterThanThreshold", name
    assert 0 < p["Threshold"] < ceiling, f"{name}: {p['Threshold']} of {ceiling} calls per period"


def test_every_function_reads_the_runtimes_one_certificate_bundle(template):
    """The Salesforce client's roots come from one file, the runtime's own
    bundle; no function overrides it, and the runtime is the one it belongs to."""
    functions = template["Globals"]["Function"]
    assert functions["Runtime"] == "provided.al2023"
    assert functions["Environment"]["Variables"]["SSL_CERT_FILE"] == "/etc/pki/tls/certs/ca-bundle.crt"
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            own = props(resource).get("Environment", {}).get("Variables", {})
            assert "SSL_CERT_FILE" not in own, name
            assert props(resource).get("Runtime", "provided.al2023") == "provided.al2023", name


def test_queues_and_secrets_survive_deletion_and_replacement(template):
    kept = {**resources(template, "AWS::SQS::Queue"), **resources(template, "AWS::SecretsManager::Secret")}
    assert len(kept) == 5
    for name, resource in kept.items():
        assert resource.get("DeletionPolicy") == "Retain", name
        assert resource.get("UpdateReplacePolicy") == "Retain", name


def test_no_deploy_rewrites_a_secret_value(template):
    """CloudFormation writes a secret's value only when SecretString or
    GenerateSecretString changes; a Name would replace the secret. Changing
    these regenerates the webhook token or empties the Salesforce settings
    that operators put there: it must be a deliberate, reviewed decision."""
    secrets = resources(template, "AWS::SecretsManager::Secret")
    for name, secret in secrets.items():
        assert "Name" not in props(secret), f"{name}: a Name makes changes replace the secret"
    assert props(secrets["WitiopSecret"])["GenerateSecretString"] == {
        "SecretStringTemplate": '{"api_token": ""}',
        "GenerateStringKey": "webhook_token",
        "PasswordLength": 48,
        "ExcludePunctuation": True,
    }
    assert props(secrets["SalesforceSecret"])["SecretString"] == "{}"
    assert props(secrets["SalesforceTokenSecret"])["SecretString"] == "{}"


# --- The alarms of the runbook ------------------------------------------------------
def custom(name, function, **label):
    dims = {"Stack": STACK, "Function": function, **label}
    return lambda ns, n, d: ns == NAMESPACE and n == name and d == dims


def aws(namespace, name, dimension, logical_id):
    return lambda ns, n, d: (
        ns == namespace and n == name and refers_to(d.get(dimension), logical_id)
    )


REQUIRED_ALARMS = {
    "dead-letter queue not empty": aws(
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", DLQ
    ),
    "age of the oldest message": aws(
        "AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", QUEUE
    ),
    "worker errors": aws("AWS/Lambda", "Errors", "FunctionName", "WorkerFunction"),
    "webhook errors": aws("AWS/Lambda", "Errors", "FunctionName", "WebhookFunction"),
    "API Gateway 5xx": aws("AWS/ApiGateway", "5xx", "ApiId", "WebhookApi"),
    "webhook rejections: unauthorized": custom(
        "webhook_rejections", WEBHOOK, reason="unauthorized"
    ),
    "webhook rejections: invalid_event": custom(
        "webhook_rejections", WEBHOOK, reason="invalid_event"
    ),
    "webhook rejections: queue_unavailable": custom(
        "webhook_rejections", WEBHOOK, reason="queue_unavailable"
    ),
    "Salesforce logins refused": custom("salesforce_logins_refused", WORKER),
    "Salesforce API allowance exhausted": custom(
        "salesforce_errors", WORKER, code="REQUEST_LIMIT_EXCEEDED"
    ),
    "Salesforce API usage over 80%": custom("salesforce_api_usage_ratio", WORKER),
    "heartbeat": custom("witiop_closes_received", WEBHOOK),
    "case lag": custom("case_lag_seconds", WORKER),
    "links Salesforce calls": custom("links_salesforce_calls", LINKS),
    "worker failures other than the expected waits": custom(
        "conversations_failed_unexpectedly", WORKER
    ),
    "stuck trigger": aws("AWS/SQS", "NumberOfMessagesReceived", "QueueName", QUEUE),
    "alarm topic undelivered": aws("AWS/SNS", "NumberOfNotificationsFailed", "TopicName", TOPIC),
}


def alarm_named(template, what):
    matches = [
        (name, alarm)
        for name, alarm in resources(template, "AWS::CloudWatch::Alarm").items()
        if any(REQUIRED_ALARMS[what](*m) for m in alarm_metrics(alarm))
    ]
    assert matches, f"no alarm: {what}"
    return matches[0]


@pytest.mark.parametrize("what", sorted(REQUIRED_ALARMS))
def test_the_alarm_exists(template, what):
    alarm_named(template, what)


def test_worker_errors_are_a_rate_over_several_periods(template):
    name, alarm = alarm_named(template, "worker errors")
    p = props(alarm)
    read = {m[1] for m in alarm_metrics(alarm)}
    assert {"Errors", "Invocations"} <= read, f"{name}: errors as a share of invocations"
    assert any("Expression" in q for q in p["Metrics"]), name
    assert 2 <= p["DatapointsToAlarm"] <= p["EvaluationPeriods"], (
        f"{name}: one transient failure must not wake anyone"
    )


def test_the_age_alarm_follows_the_backoff_cap(template):
    name, alarm = alarm_named(template, "age of the oldest message")
    assert props(alarm)["Threshold"] == {"Ref": "RetryCapSeconds"}, (
        f"{name}: tie the threshold to RetryCapSeconds"
    )


def test_the_heartbeat_treats_silence_as_breaching(template):
    name, alarm = alarm_named(template, "heartbeat")
    p = props(alarm)
    assert p["TreatMissingData"] == "breaching", name
    assert p["ComparisonOperator"] == "LessThanThreshold", name
    assert p["EvaluationPeriods"] == {"Ref": "HeartbeatHours"}, name
    assert p["Period"] * template["Parameters"]["HeartbeatHours"]["MaxValue"] <= 86400


def test_api_usage_alarms_at_80_percent(template):
    name, alarm = alarm_named(template, "Salesforce API usage over 80%")
    assert props(alarm)["Threshold"] == 0.8, name


def test_the_stuck_trigger_alarm_waits_30_minutes_and_sees_a_polling_trigger(template):
    name, alarm = alarm_named(template, "stuck trigger")
    p = props(alarm)
    read = {(m[1]) for m in alarm_metrics(alarm) if refers_to(m[2].get("QueueName"), QUEUE)}
    assert read == {
        "ApproximateNumberOfMessagesVisible",
        "NumberOfMessagesReceived",
        "NumberOfEmptyReceives",
    }, f"{name}: visible, received, and empty receives (a polling trigger makes them)"
    periods = {q["MetricStat"]["Period"] for q in p["Metrics"] if "MetricStat" in q}
    assert len(periods) == 1
    assert p["DatapointsToAlarm"] == p["EvaluationPeriods"], f"{name}: every period of the window"
    assert periods.pop() * p["DatapointsToAlarm"] == 1800, f"{name}: 30 minutes"
    (expression,) = [q["Expression"] for q in p["Metrics"] if "Expression" in q]
    assert "received" in expression and "emptyReceives" in expression, expression
    assert "NotVisible" not in str(p["Metrics"]), "a record backing off for hours must not hide it"


def test_the_worker_errors_alarm_no_longer_speaks_of_outages_as_failures(template):
    """Expected waits fail no invocation (src/bin/worker.rs): the alarm's
    description must not send the operator to a Salesforce outage."""
    name, alarm = alarm_named(template, "worker errors")
    text = props(alarm)["AlarmDescription"]
    assert "expected waits" in text and "fail no invocation" in text, name


# --- Salesforce calls in flight ------------------------------------------------------
# Salesforce: 25 concurrent requests of 20 s or longer in a production org
# (salesforce-app-limits-platform-api). The links function holds at most one
# call per invocation, so at most its reserved concurrency.
ORG_CONCURRENT_LIMIT = 25


def test_salesforce_calls_in_flight_stay_within_the_orgs_concurrent_limit(template):
    parameters = template["Parameters"]
    instances, records = parameters["MaximumConcurrency"], parameters["RecordConcurrency"]
    links = props(template["Resources"]["LinksFunction"])["ReservedConcurrentExecutions"]
    assert isinstance(links, int), "the links function's concurrency is a fixed number"
    assert instances["MinValue"] >= 2, "Lambda refuses a MaximumConcurrency below 2"
    worst = instances["MaxValue"] * records["MaxValue"] + links
    assert worst <= ORG_CONCURRENT_LIMIT, (
        f"{instances['MaxValue']} instances x {records['MaxValue']} records + links {links}"
        f" = {worst} calls in flight, over the org's {ORG_CONCURRENT_LIMIT}"
    )
    default = instances["Default"] * records["Default"] + links
    assert default < ORG_CONCURRENT_LIMIT, "the defaults leave room to the org's other clients"
    ((_, trigger),) = list(sqs_triggers(template))
    assert trigger["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "MaximumConcurrency"}
    assert env_of(template, "WorkerFunction")["RECORD_CONCURRENCY"] == {"Ref": "RecordConcurrency"}


# --- Nothing lost in silence, nothing spent for nothing ----------------------------
def test_nobody_may_purge_either_queue(template):
    refused = set()
    for policy in resources(template, "AWS::SQS::QueuePolicy").values():
        for s in props(policy)["PolicyDocument"]["Statement"]:
            if (
                s["Effect"] == "Deny"
                and s.get("Principal") in ("*", {"AWS": "*"})
                and "sqs:PurgeQueue" in as_list(s["Action"])
                and "Condition" not in s
            ):
                for queue in (QUEUE, DLQ):
                    if any(refers_to(q, queue) for q in props(policy)["Queues"]) and any(
                        refers_to(r, queue) for r in as_list(s["Resource"])
                    ):
                        refused.add(queue)
    assert refused == {QUEUE, DLQ}, f"PurgeQueue is refused only on {sorted(refused)}"


def test_no_xray_tracing(template):
    functions = template["Globals"]["Function"]
    assert functions.get("Tracing", "PassThrough") != "Active", "X-Ray is on for every function"
    for name, function in resources(template, "AWS::Serverless::Function").items():
        assert props(function).get("Tracing", "PassThrough") != "Active", name


def tags_of(template, resource):
    """{key: value} of a resource's Tags, with SAM's Globals merged in."""
    kind = resource["Type"]
    tags = props(resource).get("Tags", {})
    if kind.startswith("AWS::Serverless::"):
        section = template.get("Globals", {}).get(kind.split("::")[-1], {})
        return {**section.get("Tags", {}), **tags}
    if isinstance(tags, list):
        return {t["Key"]: t["Value"] for t in tags}
    return dict(tags)


def test_every_resource_that_takes_tags_carries_the_project_tag(template):
    from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER

    untagged, checked = [], 0
    for name, resource in template["Resources"].items():
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("eu-west-1", resource["Type"])
        if "Tags" not in schema.schema.get("properties", {}):
            continue
        checked += 1
        if tags_of(template, resource).get(PROJECT_TAG[0]) != PROJECT_TAG[1]:
            untagged.append(name)
    assert checked >= 20
    assert not untagged, f"without {PROJECT_TAG[0]}={PROJECT_TAG[1]}: {untagged}"


# --- A release that can be undone ---------------------------------------------------
def test_every_function_is_called_through_its_live_alias(template):
    """AutoPublishAlias makes SAM point the API routes and the SQS trigger at
    the alias (sam-specification-generated-resources-function): what
    `make rollback` moves back."""
    assert template["Globals"]["Function"].get("AutoPublishAlias") == "live"
    functions = resources(template, "AWS::Serverless::Function")
    assert set(functions) == {"WebhookFunction", "WorkerFunction", "LinksFunction"}
    for name, function in functions.items():
        assert props(function).get("AutoPublishAlias", "live") == "live", name
    for name, mapping in resources(template, "AWS::Lambda::EventSourceMapping").items():
        pytest.fail(f"{name}: a trigger outside SAM's events would not follow the alias")


def test_the_webhook_goes_out_gradually_and_its_alarms_roll_it_back(template):
    preference = props(template["Resources"]["WebhookFunction"])["DeploymentPreference"]
    assert preference["Type"].startswith(("Canary", "Linear")), preference["Type"]
    assert preference.get("Enabled", True) is True
    alarms = {
        what: alarm_named(template, what)[0]
        for what in ("webhook errors", "webhook rejections: invalid_event")
    }
    for what, name in alarms.items():
        assert any(refers_to(a, name) for a in preference["Alarms"]), f"{what} ({name}) rolls back"
    # The whole API's 5xx include the links route's throttling: no verdict
    # on the webhook.
    api_5xx = alarm_named(template, "API Gateway 5xx")[0]
    assert not any(refers_to(a, api_5xx) for a in preference["Alarms"])
    # The canary must outlast the slowest of these alarms' decisions.
    minutes = int(re.search(r"(\d+)Minutes?$", preference["Type"]).group(1))
    for name in alarms.values():
        p = props(template["Resources"][name])
        period = p.get("Period") or max(q["MetricStat"]["Period"] for q in p["Metrics"] if "MetricStat" in q)
        needed = period * p.get("DatapointsToAlarm", p["EvaluationPeriods"]) / 60
        assert needed <= minutes, f"{name} needs {needed} minutes, the canary lasts {minutes}"


# --- The metric contract ----------------------------------------------------------
def contract_violations(found):
    wrong = []
    for namespace, name, dims in found:
        if namespace != NAMESPACE:
            continue
        if name not in CONTRACT:
            wrong.append(f"{name}: not a metric of the contract")
            continue
        functions, label, values = CONTRACT[name]
        expected = {"Stack", "Function"} | ({label} if label else set())
        if set(dims) != expected:
            wrong.append(f"{name}: dimensions {sorted(dims)}, the code publishes {sorted(expected)}")
            continue
        if dims["Stack"] != STACK:
            wrong.append(f"{name}: Stack must be the stack's name, not {dims['Stack']!r}")
        if dims["Function"] not in functions:
            wrong.append(f"{name}: Function {dims['Function']!r}, emitted by {sorted(functions)}")
        if label and values is not None and dims[label] not in values:
            wrong.append(f"{name}: {label} {dims[label]!r} is none of {sorted(values)}")
    return wrong


def test_alarms_name_only_metrics_the_code_publishes(template):
    found = [
        m for alarm in resources(template, "AWS::CloudWatch::Alarm").values() for m in alarm_metrics(alarm)
    ]
    wrong = contract_violations(found)
    assert not wrong, "; ".join(wrong)


def test_the_dashboard_names_only_metrics_the_code_publishes(template):
    found = dashboard_metrics(template)
    wrong = contract_violations(found)
    assert not wrong, "; ".join(wrong)
    shown = {(n, d.get("reason")) for ns, n, d in found if ns == NAMESPACE}
    for wanted in [
        ("conversations_queued", None),
        ("events_ignored", None),
        *[("webhook_rejections", r) for r in REJECTION_REASONS],
        ("cases_created", None),
        ("salesforce_api_calls", None),
        ("salesforce_api_usage_ratio", None),
        ("salesforce_logins", None),
        ("salesforce_logins_refused", None),
        ("case_lag_seconds", None),
    ]:
        assert wanted in shown, f"the dashboard lacks {wanted}"
    sqs = {(n, d["QueueName"]) for ns, n, d in found if ns == "AWS/SQS"}
    assert ("ApproximateNumberOfMessagesVisible", f"<{QUEUE}.QueueName>") in sqs
    assert ("ApproximateAgeOfOldestMessage", f"<{QUEUE}.QueueName>") in sqs
    assert ("ApproximateNumberOfMessagesVisible", f"<{DLQ}.QueueName>") in sqs


def test_the_dashboard_has_an_output(template):
    url = template["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert "${Dashboard}" in url and "cloudwatch" in url


MACRO = re.compile(r"\b(?:metrics::)?(counter|gauge|histogram)!\s*\(")


def emitted_metrics():
    """{(name, frozenset(label keys)): {source paths}} of every metric macro under src/."""
    found = {}
    for path in sorted(SRC.rglob("*.rs")):
        text = path.read_text(encoding="utf-8")
        for m in MACRO.finditer(text):
            depth, i = 1, m.end()
            while i < len(text) and depth:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            args = text[m.end() : i - 1]
            name = re.match(r'\s*"([^"]+)"', args)
            if name:
                labels = frozenset(re.findall(r'"([^"]+)"\s*=>', args))
                key = (name.group(1), labels)
                found.setdefault(key, set()).add(path.relative_to(SRC).as_posix())
    return found


def of_function(path, function):
    return any(path == s or path.startswith(s + "/") for s in FUNCTION_SOURCES[function])


def test_the_code_emits_every_metric_of_the_contract():
    emitted = emitted_metrics()
    telemetry = (SRC / "telemetry.rs").read_text(encoding="utf-8")
    missing = []
    for dimension in ("Stack", "Function"):
        if not re.search(rf'with_dimension\(\s*"{dimension}"', telemetry):
            missing.append(f"the {dimension} dimension on every metric (src/telemetry.rs)")
    for name, (functions, label, values) in sorted(CONTRACT.items()):
        if name == "cold_starts":
            if not re.search(r'lambda_cold_start_metric\(\s*"cold_starts"\s*\)', telemetry):
                missing.append("cold_starts (src/telemetry.rs)")
            # The binaries start their metrics through `startup::telemetry`,
            # which hands the function's name to `init_metrics`.
            startup = (SRC / "startup.rs").read_text(encoding="utf-8")
            if not re.search(r"init_metrics\(\s*function\s*\)", startup):
                missing.append("cold_starts with the function's name (src/startup.rs)")
            for function in functions:
                binary = SRC / "bin" / f"{function}.rs"
                if not re.search(
                    rf'(init_metrics|startup::telemetry)\(\s*"{function}"\s*\)', binary.read_text(encoding="utf-8")
                ):
                    missing.append(f'cold_starts with Function="{function}" (src/bin/{function}.rs)')
            continue
        labels = frozenset({label} if label else set())
        paths = emitted.get((name, labels), set())
        if not paths:
            other = sorted(sorted(l) for (n, l) in emitted if n == name)
            missing.append(
                f"{name}" + (f" with label {label}" if label else "") + (f" (emitted with labels {other})" if other else "")
            )
            continue
        for function in functions:
            if not any(of_function(p, function) for p in paths):
                missing.append(f'{name} from the {function} function (emitted in {sorted(paths)})')
        if values:
            code = "".join(
                (SRC / p).read_text(encoding="utf-8") for p in paths
            )
            absent = sorted(v for v in values if f'"{v}"' not in code)
            if absent:
                missing.append(f"{name}: {label} values {absent} (not in {sorted(paths)})")
    assert not missing, "the code does not emit the metric contract: " + "; ".join(missing)
