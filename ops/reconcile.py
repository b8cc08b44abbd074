#!/usr/bin/env python3
"""`make reconcile`: the conversations the webhook accepted that have no Case.

    reconcile.py ACCEPTED SECRET FROM_MS TO_MS

ACCEPTED is the AWS CLI's `logs filter-log-events` answer over the webhook
function's log group: each line the webhook logs per request is one JSON
object (src/telemetry.rs), and an accepted event's carries
`"outcome":"queued"` with `conversation_id` and the SQS `message_id`
(src/webhook/mod.rs). SECRET is the `get-secret-value` answer holding the
Salesforce secret.

Each conversation is looked up the way the worker keys its Case
(`case_lookup_query` in src/salesforce/records.rs): by the External ID field
`case_external_id_field` names, holding the conversation id, or else by its
Subject `<customer number> [<conversation id>]`, whose end is the
conversation id in brackets. Many conversations share one SOQL query (`IN`,
or `LIKE` joined by `OR`), and every page of an answer is read.

One line per conversation without a Case, then a summary; the exit status
is 1 when any has none. Reads only; standard library and curl, as
preflight.py, whose login and session it reuses.
"""

import json
import re
import sys
import time
import urllib.parse

from preflight import Checklist, Org, Unreadable, error_of, http, load_secret, login

# The worker's rule for a field's API name (src/config/case_fields.rs): it is
# written into the query, so nothing else may pass.
API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

# Conversations per query: the ids of 100 conversations (up to 255
# characters each, escaped) stay far below SOQL's 100,000-character limit
# and their Cases below a page of 2,000 records.
PER_QUERY = 100


def soql_escaped(value, like=False):
    """A string for inside SOQL quotes; in LIKE, `%` and `_` taken literally.
    SOQL and SOSL Reference, "Quoted String Escape Sequences":
    https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_quotedstringescapes.htm
    """
    out = []
    for c in value:
        if c in "\\'\"":
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif like and c in "%_":
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def accepted(path):
    """{conversation id: (first accepted ms, its message id, times accepted)}
    of the webhook's "queued" lines; other lines are passed over."""
    text = open(path, encoding="utf-8").read()
    events = (json.loads(text) if text.strip() else {}).get("events") or []
    found = {}
    for e in sorted(events, key=lambda e: e.get("timestamp") or 0):
        try:
            line = json.loads(e.get("message") or "")
        except ValueError:
            continue
        if not isinstance(line, dict) or line.get("outcome") != "queued":
            continue
        conversation = str(line.get("conversation_id") or "")
        if not conversation:
            continue
        first = found.get(conversation)
        if first is None:
            found[conversation] = (e.get("timestamp") or 0, str(line.get("message_id") or "?"), 1)
        else:
            found[conversation] = (first[0], first[1], first[2] + 1)
    return found


def query_all(org, soql):
    """Every record of a query, page after page (REST API Developer Guide,
    "Execute a SOQL Query": an answer with `nextRecordsUrl` has more):
    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_query.htm
    """
    status, answer = org.get("query?q=" + urllib.parse.quote(soql, safe=""))
    records = []
    while True:
        if status != 200 or not isinstance(answer, dict):
            raise Unreadable(f"the query answered HTTP {status} {error_of(answer)}")
        records += answer.get("records") or []
        following = answer.get("nextRecordsUrl")
        if answer.get("done", True) or not following:
            return records
        status, answer = http(org.instance + following, org.token)


def with_case(org, secret, conversations):
    """The conversations among `conversations` that have a Case."""
    field = secret.get("case_external_id_field")
    found = set()
    for start in range(0, len(conversations), PER_QUERY):
        chunk = conversations[start:start + PER_QUERY]
        if field:
            values = ", ".join(f"'{soql_escaped(c)}'" for c in chunk)
            for r in query_all(org, f"SELECT {field} FROM Case WHERE {field} IN ({values})"):
                found.add(str(r.get(field)))
        else:
            # SOQL and SOSL Reference, "Comparison Operators" (LIKE, `%`):
            # https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_comparisonoperators.htm
            ors = " OR ".join(f"Subject LIKE '%{soql_escaped(f'[{c}]', like=True)}'" for c in chunk)
            for r in query_all(org, f"SELECT Subject FROM Case WHERE {ors}"):
                m = re.search(r"\[([^\[\]]*)\]$", r.get("Subject") or "")
                if m:
                    found.add(m.group(1))
    return found


def when(ms):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def main(argv):
    if len(argv) != 4:
        print("usage: reconcile.py ACCEPTED SECRET FROM_MS TO_MS", file=sys.stderr)
        return 2
    accepted_path, secret_path, since, until = argv[0], argv[1], int(argv[2]), int(argv[3])
    conversations = accepted(accepted_path)
    span = f"between {when(since)} and {when(until)}"
    events = sum(n for _, _, n in conversations.values())
    print(f"The webhook accepted {events} event(s) for {len(conversations)} conversation(s) {span}.")
    if not conversations:
        print("Nothing to compare.")
        return 0

    secret = load_secret(secret_path)
    if not secret:
        print("error: the Salesforce secret does not hold the settings (README, Configuration)", file=sys.stderr)
        return 2
    field = secret.get("case_external_id_field")
    if field is not None and (not isinstance(field, str) or not API_NAME.fullmatch(field)):
        print(f"error: case_external_id_field {field!r} is not a field's API name", file=sys.stderr)
        return 2
    c = Checklist()
    session = login(c, secret)
    if session is None:
        c.print_text()
        print("error: no Salesforce session: nothing was compared (make check-salesforce)", file=sys.stderr)
        return 2
    instance, token, _ = session
    org = Org(instance, token, str(secret.get("api_version") or "62.0").lstrip("vV"))
    key = f"Case.{field}" if field else "Subject ending in [<conversation id>]"
    print(f"Looking each one up in Salesforce ({instance}) by {key}...")
    try:
        have = with_case(org, secret, sorted(conversations))
    except Unreadable as e:
        print(f"error: Salesforce could not be read: {e}", file=sys.stderr)
        return 2

    missing = sorted((first, conversation, message, n)
                     for conversation, (first, message, n) in conversations.items()
                     if conversation not in have)
    if missing:
        print()
        print("Accepted, but no Case:")
    for first, conversation, message, n in missing:
        again = f" | accepted {n}x" if n > 1 else ""
        print(f"- conversation {conversation} | accepted {when(first)} | message {message}{again}")
    print()
    print(f"{len(conversations)} conversation(s) accepted {span}: "
          f"{len(conversations) - len(missing)} with a Case, {len(missing)} without.")
    if missing:
        print("A recent one may still be on its way: waiting in the queue (make status) or parked")
        print("(make dlq, by its message id). For one that is neither, ask WitiOp to send the")
        print("conversation again: the webhook accepts it, and the worker never makes a second Case.")
        return 1
    print("Every accepted conversation has its Case.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
