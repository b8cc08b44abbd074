#!/usr/bin/env python3
"""JSON for the operator scripts in this folder (standard library only).

Each subcommand reads an AWS CLI answer (a file or stdin) and prints plain
text for the shell or for the operator. Secrets are read from files that the
scripts keep in a private temporary folder; a secret is written only into a
curl configuration on stdout (piped to `curl -K -`, never on a command line)
or, for `webhook-url`, printed because the operator asked for it. The
dead-letter queue's subcommands live in parked.py.
"""

import datetime
import json
import re
import sys
import time
import urllib.parse
from ipaddress import ip_address

import parked

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
    """One line per SQS trigger: UUID, State, function name (and `:alias`
    when the trigger calls one: arn:aws:lambda:REGION:ACCOUNT:function:NAME[:ALIAS])."""
    for m in load(path).get("EventSourceMappings") or []:
        parts = (m.get("FunctionArn") or "").split(":")
        function = ":".join(parts[6:8]) if len(parts) >= 7 else ""
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


def cmd_error_code(path):
    """The error code of an AWS CLI failure ("unknown" when the answer had none)."""
    text = open(path, encoding="utf-8", errors="replace").read()
    m = re.search(r"An error occurred \(([^)]*)\)", text)
    print(m.group(1) if m else "unknown")


def cmd_live_published(alias_path, versions_path):
    """When the version the alias serves was published, in epoch seconds
    (Lambda's `LastModified`, e.g. `2026-12-04T23:58:47.123+0000`); 0 when
    unknown, so that the function counts as part of no release."""
    current = load(alias_path).get("FunctionVersion", "")
    for v in load(versions_path).get("Versions") or []:
        if v.get("Version") == current:
            text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", v.get("LastModified") or "")
            try:
                t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                break
            if t.tzinfo is None:
                t = t.replace(tzinfo=datetime.timezone.utc)
            print(int(t.timestamp()))
            return
    print(0)


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


def epoch_ms(text):
    """Milliseconds since the epoch of a time the operator wrote: a span back
    from now (`90m`, `24h`, `7d`) or an ISO 8601 date or time (`2026-11-26`,
    `2026-11-26T03:00`, `2026-11-26T03:00:00+01:00`; UTC unless it says)."""
    text = (text or "").strip()
    m = re.fullmatch(r"(\d+)\s*([mhd])", text)
    if m:
        seconds = int(m.group(1)) * {"m": 60, "h": 3600, "d": 86400}[m.group(2)]
        return int((time.time() - seconds) * 1000)
    try:
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp() * 1000)


def cmd_epoch_ms(text, name):
    ms = epoch_ms(text)
    if ms is None:
        fail(f"{name}={text!r} is not a time: write e.g. {name}=24h, {name}=7d,"
             f" {name}=2026-11-26 or {name}=2026-11-26T03:00:00Z", 2)
    print(ms)


# --- webhook ------------------------------------------------------------------


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
    "live-published": cmd_live_published,
    "error-code": cmd_error_code,
    "webhook-url": cmd_webhook_url,
    "smoke-body": cmd_smoke_body,
    "smoke-curl": cmd_smoke_curl,
    "smoke-result": cmd_smoke_result,
    "epoch-ms": cmd_epoch_ms,
    **parked.COMMANDS,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        fail(f"usage: opsjson.py {{{'|'.join(COMMANDS)}}} ARGS...", 2)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
