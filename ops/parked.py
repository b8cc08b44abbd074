"""The dead-letter queue's messages, for `make dlq`, `dlq-delete` and `redrive`.

Subcommands of opsjson.py (standard library only). Each reads an AWS CLI
`receive-message` answer and keeps what the scripts need between calls in
files of their private temporary folder.
"""

import json
import os
import time

# The SQS message attributes the worker writes when it parks a conversation
# (src/queue.rs; a test there holds these to the same names).
CONVERSATION_ID = "conversation_id"
ERROR_CODE = "error_code"
ERROR_MESSAGE = "error_message"
FAILED_AT = "failed_at"
ORIGINAL_MESSAGE_ID = "original_message_id"

# The reason of a message SQS itself moved here after the queue's
# maxReceiveCount: the worker never saw it fail for good, so it wrote none.
MAX_RECEIVE_COUNT = "max_receive_count"


def load(path):
    text = open(path, encoding="utf-8").read()
    # The AWS CLI prints nothing at all for an empty receive.
    return json.loads(text) if text.strip() else {}


def messages_of(batch_path):
    return load(batch_path).get("Messages") or []


def message_attr(m, name):
    return ((m.get("MessageAttributes") or {}).get(name) or {}).get("StringValue", "")


def reason_of(m):
    """Why it was parked: the worker's error code, else max_receive_count."""
    return message_attr(m, ERROR_CODE) or MAX_RECEIVE_COUNT


def parked(m):
    """What the operator needs of one parked message."""
    system = m.get("Attributes") or {}
    failed_at = message_attr(m, FAILED_AT)
    if not failed_at and system.get("SentTimestamp"):
        sent = int(system["SentTimestamp"]) / 1000
        failed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sent))
    return {
        "message_id": m.get("MessageId", ""),
        "original_message_id": message_attr(m, ORIGINAL_MESSAGE_ID),
        "conversation_id": message_attr(m, CONVERSATION_ID) or "?",
        "error_code": reason_of(m),
        "error_message": message_attr(m, ERROR_MESSAGE)
        or "failed on every delivery: read the worker's log for this conversation id",
        "failed_at": failed_at,
        "receive_count": system.get("ApproximateReceiveCount", "?"),
        "group": system.get("MessageGroupId", ""),
    }


def describe(p):
    """Two lines about one parked message, as `make dlq` prints them."""
    group = f" | customer group {p['group']}" if p["group"] else ""
    # The id it had in the queue is the one the webhook logged (make reconcile).
    queued = f" (queued as {p['original_message_id']})" if p.get("original_message_id") else ""
    return (f"- conversation {p['conversation_id']} | {p['error_code']} | failed at "
            f"{p['failed_at']} | received {p['receive_count']}x{group} | message {p['message_id']}"
            f"{queued}\n  {p['error_message']}")


def seen_ids(path):
    if not os.path.exists(path):
        return set()
    return {line.strip() for line in open(path, encoding="utf-8") if line.strip()}


# --- make dlq -----------------------------------------------------------------


def cmd_dlq_take(batch_path, seen_path, handles_path):
    """Adds a receive's new messages to `seen_path` (JSON lines) and their
    receipt handles to `handles_path`; prints "<received> <new> <total seen>"."""
    messages = messages_of(batch_path)
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
        print(describe(p))
    reasons = {}
    for p in items:
        reasons[p["error_code"]] = reasons.get(p["error_code"], 0) + 1
    if reasons:
        print("By reason (make redrive REASON=<reason> moves back only those): "
              + ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())))
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


# --- make dlq-delete ----------------------------------------------------------


def cmd_dlq_find(batch_path, wanted, seen_path, handles_path, found_path):
    """Looks for the message `wanted` (its MessageId in the dead-letter queue)
    in a receive. Its receipt handle goes to `found_path`, with the lines that
    show it; every other message's handle to `handles_path` (made visible
    again at the end). Prints "<received> <new> <found: 0 or 1>"."""
    messages = messages_of(batch_path)
    seen = seen_ids(seen_path)
    new = found = 0
    with open(seen_path, "a", encoding="utf-8") as s, open(handles_path, "a", encoding="utf-8") as h:
        for m in messages:
            if m.get("MessageId") not in seen:
                seen.add(m.get("MessageId"))
                s.write(m.get("MessageId", "") + "\n")
                new += 1
            if m.get("MessageId") == wanted and not found:
                found = 1
                json.dump({"handle": m["ReceiptHandle"], "shown": describe(parked(m))},
                          open(found_path, "w", encoding="utf-8"))
            else:
                h.write(m["ReceiptHandle"] + "\n")
    print(f"{len(messages)} {new} {found}")


def cmd_found(found_path, key):
    print(json.load(open(found_path, encoding="utf-8"))[key])


# --- make redrive -------------------------------------------------------------


def cmd_now_ms():
    print(int(time.time() * 1000))


def cmd_move_plan(batch_path, queue_url, out_dir, since_ms, reason, seen_path, hidden_path):
    """Sorts a receive from the dead-letter queue into what to move back and
    what to leave, each message once however often it is received again.

    To move: parked before `since_ms` (the redrive's start) and, when
    `reason` is not empty, parked for that reason. For each, in the order
    received (a customer's oldest first): `<n>.send.json` (send-message
    input: body and attributes unchanged; on a FIFO queue the same message
    group and the parked message's own id as deduplication id, so that a
    send repeated after a crash before the delete is dropped by SQS),
    `<n>.handle` and `<n>.label`.

    Left: another reason, or parked again since the start (its cause not
    fixed; leaving it lets the run end). Their receipt handles go to
    `hidden_path`: they stay hidden until the end of the run, so that the
    messages behind them in a FIFO group can be received, and are then made
    visible again.

    Prints "<received> <new> <to move> <skipped: other reason> <left: parked again>"."""
    messages = messages_of(batch_path)
    seen = seen_ids(seen_path)
    fifo = queue_url.endswith(".fifo")
    n = new = skipped = again = 0
    with open(seen_path, "a", encoding="utf-8") as s, open(hidden_path, "a", encoding="utf-8") as hidden:
        for m in messages:
            first_time = m["MessageId"] not in seen
            if first_time:
                seen.add(m["MessageId"])
                s.write(m["MessageId"] + "\n")
                new += 1
            sent = int((m.get("Attributes") or {}).get("SentTimestamp") or 0)
            if sent > int(since_ms):
                hidden.write(m["ReceiptHandle"] + "\n")
                again += first_time
                continue
            if reason and reason_of(m) != reason:
                hidden.write(m["ReceiptHandle"] + "\n")
                skipped += first_time
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
                f"conversation {message_attr(m, CONVERSATION_ID) or '?'} ({reason_of(m)},"
                f" message {m['MessageId']})")
            n += 1
    print(f"{len(messages)} {new} {n} {skipped} {again}")


COMMANDS = {
    "dlq-take": cmd_dlq_take,
    "dlq-report": cmd_dlq_report,
    "visibility-batches": cmd_visibility_batches,
    "dlq-find": cmd_dlq_find,
    "found": cmd_found,
    "now-ms": cmd_now_ms,
    "move-plan": cmd_move_plan,
}
