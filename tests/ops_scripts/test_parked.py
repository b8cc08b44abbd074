"""ops/parked.py's choice of what `make redrive` moves, on received
messages as the AWS CLI prints them. What only a live queue can show (the
moves, the groups, the deduplication) is tested against moto in
tests/ops_commands/redrive.rs; a message parked again while a redrive runs
cannot be timed there, so its rule is checked here."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "ops"))

import parked  # noqa: E402

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/witiop-queue.fifo"
START = 1_795_700_000_000


def message(n, sent, reason="configuration"):
    attributes = {"conversation_id": {"DataType": "String", "StringValue": str(n)}}
    if reason:
        attributes["error_code"] = {"DataType": "String", "StringValue": reason}
    return {
        "MessageId": f"m-{n}",
        "ReceiptHandle": f"h-{n}",
        "Body": json.dumps({"conversation": {"id": n}}),
        "Attributes": {"SentTimestamp": str(sent), "MessageGroupId": "393331111111"},
        "MessageAttributes": attributes,
    }


def plan(tmp_path, messages, reason=""):
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"Messages": messages}))
    out = tmp_path / "move"
    out.mkdir(exist_ok=True)
    seen, hidden = tmp_path / "seen.txt", tmp_path / "hidden.txt"
    parked.cmd_move_plan(str(batch), QUEUE, str(out), str(START), reason, str(seen), str(hidden))
    return out, hidden


def test_one_parked_again_since_the_start_is_left_hidden_and_counted_once(tmp_path, capsys):
    again = message(2, START + 1)
    out, hidden = plan(tmp_path, [message(1, START - 5_000), again])
    assert capsys.readouterr().out.split() == ["2", "2", "1", "0", "1"]
    sent = json.loads((out / "0.send.json").read_text())
    assert sent["MessageGroupId"] == "393331111111"
    assert sent["MessageDeduplicationId"] == "m-1"
    assert not (out / "1.send.json").exists()
    assert hidden.read_text().split() == ["h-2"]
    # Received again (its hiding over): its new handle kept, not counted again.
    again["ReceiptHandle"] = "h-2-again"
    plan(tmp_path, [again])
    assert capsys.readouterr().out.split() == ["1", "0", "0", "0", "0"]
    assert hidden.read_text().split() == ["h-2", "h-2-again"]


def test_a_reason_moves_only_its_own_and_max_receive_count_names_the_unexplained(tmp_path, capsys):
    messages = [message(1, START - 3, "INVALID_FIELD"), message(2, START - 2), message(3, START - 1, None)]
    plan(tmp_path, messages, reason="max_receive_count")
    assert capsys.readouterr().out.split() == ["3", "3", "1", "2", "0"]
    assert "conversation 3 (max_receive_count" in (tmp_path / "move" / "0.label").read_text()
