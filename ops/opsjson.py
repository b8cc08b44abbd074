#!/usr/bin/env python3
"""JSON for the operator scripts in this folder (standard library only).

Each subcommand reads an AWS CLI answer (a file or stdin) and prints plain
text for the shell or for the operator. Secrets are read from files that the
scripts keep in a private temporary folder; a secret is written only into a
curl configuration on stdout (piped to `curl -K -`, never on a command line)
or, for `webhook-url`, printed because the operator asked for it.
"""

import json
import os
import re
import sys
import time
import urllib.parse
from ipaddress import ip_address

# The SQS message attributes the worker writes when it parks a conversation
# (src/queue.rs).
CONVERSATION_ID = "conversation_id"
ERROR_CODE = "error_code"
ERROR_MESSAGE = "error_message"
FAILED_AT = "failed_at"

# Error codes meaning "this endpoint does not offer StartMessageMoveTask":
# only these (and an emulator's bare 500/501, see `move-unsupported`) lead to
# moving messages one by one.
UNSUPPORTED = {
    "UnsupportedOperation",
    "AWS.SimpleQueueService.UnsupportedOperation",
    "InvalidAction",
    "UnknownOperation",
    "UnknownOperationException",
    "NotImplemented",
}


def fail(message, code=1):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def load(path=None):
    text = open(path, encoding="utf-8").read() if path else sys.stdin.read()
    # The AWS CLI prints nothing at all for an empty receive.
    return json.loads(text) if text.strip() else {}


def secret_value(path, what):
    """The JSON object held by a secret (`get-secret-value` answer in `path`)."""
    answer = load(path)
    try:
        value = json.loads(answer.get("SecretString") or "")
    except ValueError:
        fail(f"the {what} secret does not hold JSON")
    if not isinstance(value, dict):
        fail(f"the {what} secret does not hold a JSON object")
    return value


def curl_quote(value):
    """A double-quoted string for a curl configuration file."""
    if any(ord(c) < 32 for c in value):
        fail("a value holds a control character")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def print_curl_config(*options):
    """A curl configuration on stdout: one `option = "value"` line a pair."""
    for option, value in options:
        print(f"{option} = {curl_quote(value)}")


def answer_json(path, default):
    """The JSON of an HTTP answer curl saved in `path`, or `default` when
    there is no answer or it is not JSON."""
    try:
        return json.load(open(path, encoding="utf-8"))
    except (OSError, ValueError):
        return default


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def secure_base_url(url):
    """https, or plain http on a loopback host (the project's rule for login_url)."""
    u = urllib.parse.urlsplit(url)
    return bool(u.hostname) and (
        u.scheme == "https" or (u.scheme == "http" and is_loopback(u.hostname))
    )


def when(value):
    """A timestamp as the AWS CLI prints it (ISO 8601 in v2, epoch seconds in v1), in UTC."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(value)))
    except (TypeError, ValueError):
        return str(value or "?")


def with_token(url, token):
    sep = "&" if urllib.parse.urlsplit(url).query else "?"
    return f"{url}{sep}token={urllib.parse.quote(token, safe='')}"


# --- stack --------------------------------------------------------------------


def stack(path):
    stacks = load(path).get("Stacks") or []
    if not stacks:
        fail("describe-stacks returned no stack")
    return stacks[0]


def cmd_output(path, key):
    for o in stack(path).get("Outputs") or []:
        if o.get("OutputKey") == key:
            print(o.get("OutputValue", ""))
            return
    fail(f"the stack has no output {key}", 3)


def cmd_outputs(path):
    s = stack(path)
    print(f"Stack {s.get('StackName')}: {s.get('StackStatus')}")
    outputs = s.get("Outputs") or []
    width = max((len(o.get("OutputKey", "")) for o in outputs), default=0)
    for o in sorted(outputs, key=lambda o: o.get("OutputKey", "")):
        print(f"  {o.get('OutputKey', ''):<{width}}  {o.get('OutputValue', '')}")


def cmd_stack_status(path):
    print(stack(path).get("StackStatus", "?"))


def cmd_samconfig(path, key):
    """`stack_name` or `region` of samconfig.toml's deploy parameters, if any."""
    try:
        text = open(path, encoding="utf-8").read()
    except OSError:
        return
    m = re.search(rf'^\s*{key}\s*=\s*"([^"]*)"', text, re.M)
    if m:
        print(m.group(1))


def cmd_alarm_names(path):
    """Alarm names among a stack's resources (`list-stack-resources`)."""
    for r in load(path).get("StackResourceSummaries") or []:
        if r.get("ResourceType") == "AWS::CloudWatch::Alarm" and r.get("PhysicalResourceId"):
            print(r["PhysicalResourceId"])


def alarms_of(paths):
    """The alarms of several `describe-alarms` answers, each name once."""
    found = {}
    for path in paths:
        d = load(path)
        for a in (d.get("MetricAlarms") or []) + (d.get("CompositeAlarms") or []):
            found[a.get("AlarmName")] = a
    return list(found.values())


def cmd_alarms(*paths):
    alarms = alarms_of(paths)
    if not alarms:
        print("  (no alarm found)")
        return
    order = {"ALARM": 0, "INSUFFICIENT_DATA": 1, "OK": 2}
    width = max(len(a.get("AlarmName", "")) for a in alarms)
    for a in sorted(alarms, key=lambda a: (order.get(a.get("StateValue"), 3), a.get("AlarmName"))):
        state = a.get("StateValue", "?")
        mark = "!!" if state == "ALARM" else "  "
        since = when(a.get("StateUpdatedTimestamp"))
        print(f"{mark}{a.get('AlarmName', ''):<{width}}  {state:<17} since {since}")
        if state == "ALARM":
            print(f"    {a.get('StateReason', '')[:300]}")


def cmd_count_alarming(*paths):
    print(sum(1 for a in alarms_of(paths) if a.get("StateValue") == "ALARM"))


# --- queues -------------------------------------------------------------------


def cmd_attr(path, name):
    print((load(path).get("Attributes") or {}).get(name, "0"))


def cmd_queue_name(url):
    print(url.rstrip("/").rsplit("/", 1)[-1])


def cmd_minutes_ago(minutes):
    t = time.time() - int(minutes) * 60
    print(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)))


def cmd_oldest(path):
    """The latest ApproximateAgeOfOldestMessage datapoint, in words ("" if none)."""
    points = sorted(load(path).get("Datapoints") or [], key=lambda p: p.get("Timestamp", ""))
    if points:
        seconds = int(points[-1].get("Maximum", 0))
        print(f"{seconds // 3600}h {seconds % 3600 // 60}m" if seconds >= 3600
              else f"{seconds // 60}m {seconds % 60}s")


def cmd_mappings(path):
    """One line per SQS trigger: UUID, State, function name."""
    for m in load(path).get("EventSourceMappings") or []:
        function = (m.get("FunctionArn") or "").rsplit(":", 1)[-1]
        print(f"{m.get('UUID')} {m.get('State')} {function or '?'}")


def cmd_field(path, name):
    print(load(path).get(name, ""))


# --- rollback -----------------------------------------------------------------


def cmd_resources_of_type(path, kind):
    """Physical ids of a stack's resources of one type (`list-stack-resources`)."""
    for r in load(path).get("StackResourceSummaries") or []:
        if r.get("ResourceType") == kind and r.get("PhysicalResourceId"):
            print(r["PhysicalResourceId"])


def cmd_list(path, key, prefix=""):
    """Each string of a list field, one a line (those starting with `prefix`)."""
    for item in load(path).get(key) or []:
        if isinstance(item, str) and item.startswith(prefix):
            print(item)


def cmd_rollback_plan(alias_path, versions_path):
    """What `make rollback` does to an alias, as `action current target`:
    `shift` when part of the traffic goes to a newer version (all of it back
    on the alias's own version), `back` to the newest published version older
    than the alias's, `first` when there is none."""
    alias = load(alias_path)
    current = alias.get("FunctionVersion", "")
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    if not current.isdigit():
        fail(f"the alias serves {current or 'no version'}, not a published version")
    if weights:
        print(f"shift {current} {current}")
        return
    older = sorted(
        int(v["Version"])
        for v in load(versions_path).get("Versions") or []
        if v.get("Version", "").isdigit() and int(v["Version"]) < int(current)
    )
    print(f"back {current} {older[-1]}" if older else f"first {current} -")




def webhook_token(path):
    token = secret_value(path, "WitiOp").get("webhook_token")
    if not isinstance(token, str) or not token:
        fail("the WitiOp secret has no webhook_token")
    return token


def cmd_webhook_url(secret_path, url):
    print(with_token(url, webhook_token(secret_path)))


def cmd_smoke_curl(secret_path, url, body_path):
    """A curl configuration posting `body_path` to the webhook with its token."""
    print_curl_config(
        ("url", with_token(url, webhook_token(secret_path))),
        ("header", "Content-Type: application/json"),
        ("data-binary", "@" + body_path),
    )


def cmd_smoke_body(event_id):
    print(json.dumps({"type": "ops.smoke", "event_id": event_id}))


def cmd_smoke_result(status, body_path):
    body = answer_json(body_path, {})
    status = int(status or 0)
    if status == 202 and body.get("status") == "ignored":
        print("OK: 202 ignored. The URL and the token are right; nothing was queued,")
        print("Salesforce was not called.")
        return
    hints = {
        0: "no answer: the URL's host is unreachable from here (DNS, network, proxy)",
        202: "202 but not 'ignored': the deployed webhook does not know this event type"
        " as ignored; check the deployed version",
        401: "the webhook refused the token: WitiOp's URL must carry the token of the"
        " WitiOp secret (a rotation is trusted by warm instances within 5 minutes)",
        403: "API Gateway refused the request: the URL is not this stack's HTTP API",
        404: "no such route: the URL must end in /witiop/conversation-closed",
        413: "the webhook refused the size of a tiny event: check MAX_MESSAGE_BYTES",
        429: "throttled by API Gateway: WebhookRateLimit/WebhookBurstLimit are too low"
        " or something floods the webhook",
    }
    hint = hints.get(status)
    if hint is None and status >= 500:
        hint = ("the webhook failed: read the webhook function's log and the"
                " API Gateway 5xx alarm (503 queue_unavailable: SQS refused the event)")
    print(f"FAILED: HTTP {status} {json.dumps(body) if body else ''}".rstrip())
    print(f"  {hint or 'unexpected answer'}")
    sys.exit(1)


# --- dead-letter queue --------------------------------------------------------


def message_attr(m, name):
    return ((m.get("MessageAttributes") or {}).get(name) or {}).get("StringValue", "")


def parked(m):
    """What the operator needs of one parked message (as src/ops.rs reads it)."""
    system = m.get("Attributes") or {}
    failed_at = message_attr(m, FAILED_AT)
    if not failed_at and system.get("SentTimestamp"):
        sent = int(system["SentTimestamp"]) / 1000
        failed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sent))
    return {
        "message_id": m.get("MessageId", ""),
        "conversation_id": message_attr(m, CONVERSATION_ID) or "?",
        "error_code": message_attr(m, ERROR_CODE) or "max_receive_count",
        "error_message": message_attr(m, ERROR_MESSAGE)
        or "failed on every delivery: read the worker's log for this conversation id",
        "failed_at": failed_at,
        "receive_count": system.get("ApproximateReceiveCount", "?"),
        "group": system.get("MessageGroupId", ""),
    }


def cmd_dlq_take(batch_path, seen_path, handles_path):
    """Adds a receive's new messages to `seen_path` (JSON lines) and their
    receipt handles to `handles_path`; prints "<received> <new> <total seen>"."""
    messages = load(batch_path).get("Messages") or []
    seen = {}
    if os.path.exists(seen_path):
        for line in open(seen_path, encoding="utf-8"):
            p = json.loads(line)
            seen[p["message_id"]] = p
    new = 0
    with open(seen_path, "a", encoding="utf-8") as out, open(handles_path, "a", encoding="utf-8") as h:
        for m in messages:
            h.write(m["ReceiptHandle"] + "\n")
            p = parked(m)
            if p["message_id"] not in seen:
                seen[p["message_id"]] = p
                out.write(json.dumps(p) + "\n")
                new += 1
    print(f"{len(messages)} {new} {len(seen)}")


def cmd_dlq_report(seen_path, waiting, in_flight, stop_reason):
    items = []
    if os.path.exists(seen_path):
        items = [json.loads(line) for line in open(seen_path, encoding="utf-8")]
    items.sort(key=lambda p: (p["failed_at"], p["message_id"]))
    waiting, in_flight = int(waiting), int(in_flight)
    print(f"{len(items)} conversation(s) seen in the dead-letter queue")
    for p in items:
        group = f" | customer group {p['group']}" if p["group"] else ""
        print(f"- conversation {p['conversation_id']} | {p['error_code']} | failed at "
              f"{p['failed_at']} | received {p['receive_count']}x{group}")
        print(f"  {p['error_message']}")
    reported = waiting + in_flight
    print()
    print(f"SQS reported {waiting} waiting + {in_flight} in flight = {reported} when the listing started.")
    if len(items) >= reported and not stop_reason:
        print("Everything was seen.")
        return
    missing = max(reported - len(items), 0)
    print(f"NOT everything was seen: {len(items)} seen, about {missing} not.")
    if stop_reason:
        print(f"  The listing stopped early: {stop_reason}.")
    if in_flight:
        print(f"  {in_flight} were in flight: hidden by another reader (another listing, a redrive")
        print("  in progress) for up to their visibility timeout; run `make dlq` again later.")
    print("  In a FIFO queue a customer's later messages cannot be read while earlier ones of the")
    print("  same customer are hidden: more than 10 parked for one customer show only the first 10.")
    print("  The counts are approximate and lag by up to a minute. Nothing was deleted.")


def cmd_visibility_batches(handles_path, queue_url, out_dir):
    """change-message-visibility-batch inputs (10 entries each) making every
    received message visible again; prints their paths."""
    handles = [h for h in open(handles_path, encoding="utf-8").read().split("\n") if h]
    for n, start in enumerate(range(0, len(handles), 10)):
        entries = [
            {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
            for i, h in enumerate(handles[start:start + 10])
        ]
        path = os.path.join(out_dir, f"visible-{n}.json")
        json.dump({"QueueUrl": queue_url, "Entries": entries}, open(path, "w", encoding="utf-8"))
        print(path)


# --- redrive ------------------------------------------------------------------


def cmd_error_code(path):
    """The error code of an AWS CLI failure ("500" when the answer had none)."""
    text = open(path, encoding="utf-8", errors="replace").read()
    m = re.search(r"An error occurred \(([^)]*)\)", text)
    if m:
        print(m.group(1))
    elif "Invalid choice" in text or "invalid choice" in text:
        print("CliUnknownCommand")
    else:
        print("unknown")


def cmd_move_unsupported(code):
    """Exit 0 when StartMessageMoveTask is truly unavailable at this endpoint:
    the service says the operation is unsupported or unknown; the AWS CLI is
    too old to know it; or an emulator answered a bare HTTP 500/501 with no
    AWS error code (moto answers StartMessageMoveTask that way: it does not
    implement it). AccessDenied, throttling and every other code: exit 1."""
    sys.exit(0 if code in UNSUPPORTED or code in ("500", "501", "CliUnknownCommand") else 1)


def cmd_move_progress(path, handle):
    """One line for the running task of `handle` (or the newest task):
    "<status> <moved> <to move> <failure reason>"."""
    tasks = load(path).get("Results") or []
    mine = [t for t in tasks if handle and t.get("TaskHandle") == handle] or tasks[:1]
    if not mine:
        print("UNKNOWN 0 ? ")
        return
    t = mine[0]
    print(f"{t.get('Status', 'UNKNOWN')} {t.get('ApproximateNumberOfMessagesMoved', 0)} "
          f"{t.get('ApproximateNumberOfMessagesToMove', '?')} {t.get('FailureReason', '')}".rstrip())


def cmd_now_ms():
    print(int(time.time() * 1000))


def cmd_move_plan(batch_path, queue_url, out_dir, since_ms, skipped_path):
    """For each received DLQ message parked before `since_ms` (the redrive's
    start): `<n>.send.json` (send-message input: body and attributes
    unchanged; on a FIFO queue the same message group and the DLQ message's
    id as deduplication id, as src/ops.rs does), `<n>.handle`, `<n>.label`.
    A message parked since (its cause not fixed) is left: its receipt handle
    goes to `skipped_path`. Prints "<received> <to move>"."""
    messages = load(batch_path).get("Messages") or []
    fifo = queue_url.endswith(".fifo")
    n = 0
    for m in messages:
        sent = int((m.get("Attributes") or {}).get("SentTimestamp") or 0)
        if sent > int(since_ms):
            with open(skipped_path, "a", encoding="utf-8") as skipped:
                skipped.write(m["ReceiptHandle"] + "\n")
            continue
        request = {"QueueUrl": queue_url, "MessageBody": m.get("Body", "")}
        attributes = {}
        for name, v in (m.get("MessageAttributes") or {}).items():
            attributes[name] = {k: v[k] for k in ("DataType", "StringValue", "BinaryValue") if k in v}
        if attributes:
            request["MessageAttributes"] = attributes
        if fifo:
            request["MessageGroupId"] = (m.get("Attributes") or {}).get("MessageGroupId") or "redriven"
            request["MessageDeduplicationId"] = m["MessageId"]
        base = os.path.join(out_dir, str(n))
        json.dump(request, open(base + ".send.json", "w", encoding="utf-8"))
        open(base + ".handle", "w", encoding="utf-8").write(m["ReceiptHandle"])
        open(base + ".label", "w", encoding="utf-8").write(
            f"conversation {message_attr(m, CONVERSATION_ID) or '?'} (message {m['MessageId']})")
        n += 1
    print(f"{len(messages)} {n}")


COMMANDS = {
    "output": cmd_output,
    "outputs": cmd_outputs,
    "stack-status": cmd_stack_status,
    "samconfig": cmd_samconfig,
    "alarm-names": cmd_alarm_names,
    "queue-name": cmd_queue_name,
    "minutes-ago": cmd_minutes_ago,
    "oldest": cmd_oldest,
    "alarms": cmd_alarms,
    "count-alarming": cmd_count_alarming,
    "attr": cmd_attr,
    "mappings": cmd_mappings,
    "field": cmd_field,
    "resources-of-type": cmd_resources_of_type,
    "list": cmd_list,
    "rollback-plan": cmd_rollback_plan,
    "webhook-url": cmd_webhook_url,
    "smoke-body": cmd_smoke_body,
    "smoke-curl": cmd_smoke_curl,
    "smoke-result": cmd_smoke_result,
    "dlq-take": cmd_dlq_take,
    "dlq-report": cmd_dlq_report,
    "visibility-batches": cmd_visibility_batches,
    "error-code": cmd_error_code,
    "move-unsupported": cmd_move_unsupported,
    "move-progress": cmd_move_progress,
    "now-ms": cmd_now_ms,
    "move-plan": cmd_move_plan,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        fail(f"usage: opsjson.py {{{'|'.join(COMMANDS)}}} ARGS...", 2)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
