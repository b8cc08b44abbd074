"""The template keeps its promises: alarms that arrive, queues that lose nothing.

Read with cfn-lint's own YAML loader (it understands `!Ref`, `!Sub`, `!GetAtt`).
The checks:

- every alarm notifies the alarm topic when it fires and when it clears;
- the topic is encrypted with a key of this template whose policy lets
  CloudWatch use it (never `alias/aws/sns`), and CloudWatch may publish to it;
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
WEBHOOK, WORKER = "webhook", "worker"
# The metrics without a label, by the one function that emits each.
UNLABELLED = {
    WEBHOOK: ["witiop_closes_received", "conversations_queued", "events_ignored"],
    WORKER: [
        "cases_created", "comments_created", "attachments_uploaded", "case_lag_seconds",
        "conversations_retried", "conversations_backed_off", "salesforce_api_calls",
        "salesforce_api_usage_ratio", "salesforce_logins", "salesforce_logins_refused",
        "case_fields_left_out",
    ],
}
# name: (functions, label, label values or None for an open set)
CONTRACT = {
    **{name: ({function}, None, None) for function, names in UNLABELLED.items() for name in names},
    "webhook_rejections": ({WEBHOOK}, "reason", REJECTION_REASONS),
    "conversations_dead_lettered": ({WORKER}, "code", None),
    "salesforce_errors": ({WORKER}, "code", SALESFORCE_ERROR_CODES),
    "cold_starts": ({WEBHOOK, WORKER}, None, None),
}
# Where the code of each function lives (the Salesforce client is the worker's).
FUNCTION_SOURCES = {
    WEBHOOK: ["webhook", "bin/webhook.rs"],
    WORKER: ["worker", "salesforce", "bin/worker.rs"],
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
def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert alarms
    wrong = []
    for name, alarm in alarms.items():
        for key in ("AlarmActions", "OKActions"):
            actions = props(alarm).get(key, [])
            if not any(refers_to(a, TOPIC) for a in actions):
                wrong.append(f"{name}.{key}")
        if "TreatMissingData" not in props(alarm):
            wrong.append(f"{name}.TreatMissingData (say what silence means)")
    assert not wrong, f"alarms that would not notify {TOPIC}: {wrong}"


def key_of_topic(template):
    topic = props(template["Resources"][TOPIC])
    key = topic.get("KmsMasterKeyId")
    assert key, f"{TOPIC} has no KmsMasterKeyId"
    assert not (isinstance(key, str) and key.startswith("alias/aws/")), (
        f"{TOPIC} uses the AWS managed key {key}: its policy cannot let CloudWatch "
        "publish, so alarms would arrive nowhere"
    )
    keys = resources(template, "AWS::KMS::Key")
    for name in keys:
        if refers_to(key, name):
            return name, keys[name]
    for alias_name, alias in resources(template, "AWS::KMS::Alias").items():
        if refers_to(key, alias_name) or key == props(alias).get("AliasName"):
            for name in keys:
                if refers_to(props(alias)["TargetKeyId"], name):
                    return name, keys[name]
    pytest.fail(f"{TOPIC}'s KmsMasterKeyId {key!r} is not a key of this template")


def principals(statement, kind):
    principal = statement.get("Principal", {})
    return as_list(principal.get(kind, [])) if isinstance(principal, dict) else []


def test_the_topic_is_encrypted_with_a_key_cloudwatch_may_use(template):
    name, key = key_of_topic(template)
    assert props(key).get("EnableKeyRotation") is True, f"{name}: turn key rotation on"
    statements = props(key)["KeyPolicy"]["Statement"]
    allowed = set()
    for s in statements:
        if "cloudwatch.amazonaws.com" in principals(s, "Service"):
            assert s["Effect"] == "Allow", f"{name} denies CloudWatch: {s}"
            allowed |= set(as_list(s["Action"]))
    assert "kms:*" in allowed or {"kms:Decrypt", "kms:GenerateDataKey*"} <= allowed, (
        f"{name}'s policy must let cloudwatch.amazonaws.com use kms:Decrypt and "
        f"kms:GenerateDataKey*, it allows {sorted(allowed)}"
    )
    admins = [
        s
        for s in statements
        if s["Effect"] == "Allow"
        and "kms:*" in as_list(s["Action"])
        and any(":root" in json.dumps(p) for p in principals(s, "AWS"))
    ]
    assert admins, f"{name}: the account root must administer the key"


def test_cloudwatch_may_publish_to_the_topic(template):
    for policy in resources(template, "AWS::SNS::TopicPolicy").values():
        if not any(refers_to(t, TOPIC) for t in props(policy)["Topics"]):
            continue
        for s in props(policy)["PolicyDocument"]["Statement"]:
            if (
                s["Effect"] == "Allow"
                and "cloudwatch.amazonaws.com" in principals(s, "Service")
                and "sns:Publish" in as_list(s["Action"])
            ):
                assert "aws:SourceAccount" in json.dumps(s.get("Condition", {})), (
                    "limit CloudWatch's sns:Publish to this account's alarms"
                )
                return
    pytest.fail(f"no topic policy lets cloudwatch.amazonaws.com sns:Publish to {TOPIC}")


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
