#!/usr/bin/env python3
"""JSON for the operator scripts in this folder (standard library only).

Each subcommand reads an AWS CLI answer (a file or stdin) and prints plain
text for the shell or for the operator. Secrets are read from files that the
scripts keep in a private temporary folder; a secret is written only into a
curl configuration on stdout (piped to `curl -K -`, never on a command line)
or, for `webhook-url`, printed because the operator asked for it.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
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


# --- Salesforce ---------------------------------------------------------------


def salesforce(secret_path):
    s = secret_value(secret_path, "Salesforce")
    if not s:
        fail("the Salesforce secret is empty ({}): fill it (README, Configuration)")
    login_url = (s.get("login_url") or "https://login.salesforce.com").rstrip("/")
    if not secure_base_url(login_url):
        fail(f"login_url {login_url} must be https (plain http only on a loopback host)")
    flow = s.get("auth_flow") or "password"
    needs = {
        "password": ("consumer_key", "consumer_secret", "username", "password"),
        "client_credentials": ("consumer_key", "consumer_secret"),
        "jwt_bearer": ("consumer_key", "username", "private_key"),
    }
    if flow not in needs:
        fail('auth_flow must be "password", "client_credentials" or "jwt_bearer"')
    for key in needs[flow]:
        if not isinstance(s.get(key), str) or not s.get(key):
            fail(f"the Salesforce secret has no {key} (needed by the {flow} flow)")
    version = str(s.get("api_version") or "62.0").lstrip("vV")
    if not re.fullmatch(r"\d+\.\d+", version):
        fail('api_version must look like "62.0"')
    return s, login_url, flow, version


def cmd_sf_describe(secret_path):
    s, login_url, flow, version = salesforce(secret_path)
    who = f" as {s['username']}" if flow in ("password", "jwt_bearer") else ""
    print(f"{flow} flow at {login_url}{who}, API v{version}")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_audience(login_url):
    """The assertion's `aud`: the same rule as the worker's
    (src/salesforce/assertion.rs): login or test, whatever host takes the
    request; a loopback local Salesforce is its own audience."""
    host = (urllib.parse.urlsplit(login_url).hostname or "").lower()
    if is_loopback(host):
        return login_url
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    return "https://login.salesforce.com"


def jwt_assertion(s, login_url):
    """An RS256 assertion valid 3 minutes, signed by openssl: python3's
    standard library has no RSA, and the key only ever goes to openssl in a
    private file, never on a command line."""
    claims = {
        "iss": s["consumer_key"],
        "sub": s["username"],
        "aud": jwt_audience(login_url),
        "exp": int(time.time()) + 180,
    }
    signing_input = (
        b64url(b'{"alg":"RS256"}') + "." + b64url(json.dumps(claims).encode())
    )
    directory = tempfile.mkdtemp()
    key_path = os.path.join(directory, "key.pem")
    try:
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(s["private_key"])
        signed = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", key_path],
            input=signing_input.encode(),
            capture_output=True,
        )
    except FileNotFoundError:
        fail("the jwt_bearer flow is checked with openssl, which is not installed here")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if signed.returncode != 0:
        fail("private_key is not a PEM RSA private key openssl can sign with")
    return signing_input + "." + b64url(signed.stdout)


def cmd_sf_login_curl(secret_path):
    s, login_url, flow, _ = salesforce(secret_path)
    if flow == "jwt_bearer":
        form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", jwt_assertion(s, login_url)),
        ]
        print_curl_config(
            ("url", login_url + "/services/oauth2/token"),
            ("data-raw", urllib.parse.urlencode(form)),
        )
        return
    form = [
        ("grant_type", flow),
        ("client_id", s["consumer_key"]),
        ("client_secret", s["consumer_secret"]),
    ]
    if flow == "password":
        form += [
            ("username", s["username"]),
            ("password", s["password"] + (s.get("security_token") or "")),
        ]
    print_curl_config(
        ("url", login_url + "/services/oauth2/token"),
        ("data-raw", urllib.parse.urlencode(form)),
    )


def cmd_sf_login_result(status, answer_path):
    answer = answer_json(answer_path, {})
    status = int(status or 0)
    if status == 200 and answer.get("access_token") and answer.get("instance_url"):
        instance = answer["instance_url"].rstrip("/")
        if not secure_base_url(instance):
            fail(f"Salesforce answered an instance_url that is not https: {instance}")
        print(instance)
        return
    if status == 0:
        fail("the login URL did not answer (DNS, network, proxy)")
    error = answer.get("error", "no error code")
    description = answer.get("error_description", "")
    advice = {
        "invalid_grant": "check username, password and security token (or that the"
        " API user is active, not locked out, and allowed to log in from this network)",
        "invalid_client_id": "consumer_key is not a Connected App of this org",
        "invalid_client": "consumer_secret does not match the Connected App",
        "unsupported_grant_type": "the flow is not enabled for the Connected App",
    }.get(error, "")
    # The JWT bearer flow's refusals say more than their code (runbook 4.4).
    advice = {
        "invalid assertion": "the certificate on the app is not the one of private_key",
        "audience is invalid": "login_url: a sandbox reached as production or the reverse",
        "expired authorization code": "this machine's clock is wrong",
        "user hasn't approved this consumer": "pre-authorise the API user for the app"
        " (a permission set listing it), or check username",
    }.get(description, advice)
    print(f"login refused: HTTP {status} {error}: {description}", file=sys.stderr)
    if advice:
        print(f"  {advice}", file=sys.stderr)
    sys.exit(1)


def cmd_sf_limits_curl(secret_path, answer_path, instance):
    _, _, _, version = salesforce(secret_path)
    token = json.load(open(answer_path, encoding="utf-8"))["access_token"]
    print_curl_config(
        ("url", f"{instance}/services/data/v{version}/limits"),
        ("header", "Authorization: Bearer " + token),
    )


def cmd_sf_limits(status, path):
    limits = answer_json(path, None)
    if int(status or 0) != 200 or not isinstance(limits, dict):
        fail(f"GET /limits answered HTTP {status}: {open(path, encoding='utf-8').read()[:300]}")
    daily = limits.get("DailyApiRequests") or {}
    top, left = daily.get("Max"), daily.get("Remaining")
    if not isinstance(top, int) or not isinstance(left, int):
        fail("the /limits answer has no DailyApiRequests")
    used = top - left
    share = used / top * 100 if top else 100.0
    print(f"DailyApiRequests: {left:,} of {top:,} remaining ({share:.1f}% used in the last 24 hours)")
    if share >= 80:
        print("  WARNING: over 80% used; at 100% conversations wait in the queue")


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
    "webhook-url": cmd_webhook_url,
    "smoke-body": cmd_smoke_body,
    "smoke-curl": cmd_smoke_curl,
    "smoke-result": cmd_smoke_result,
    "sf-describe": cmd_sf_describe,
    "sf-login-curl": cmd_sf_login_curl,
    "sf-login-result": cmd_sf_login_result,
    "sf-limits-curl": cmd_sf_limits_curl,
    "sf-limits": cmd_sf_limits,
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
