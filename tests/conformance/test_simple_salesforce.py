"""Conformance: the widely used simple-salesforce client talks to the local Salesforce.

If this client cannot log in, query, create, run a composite request and read
an error from it, the local Salesforce does not speak Salesforce's wire format.
Org settings the tests change go through the `/__control/` surface and are
put back by the `org` fixture, as the server is shared by the module.
"""

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceMalformedRequest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("LOCAL_SALESFORCE_BIN", ROOT / "target" / "debug" / "local-salesforce"))

CONSUMER_KEY = "local-consumer-key"
CONSUMER_SECRET = "local-consumer-secret"
USERNAME = "witiop.api@acme.example"
PASSWORD = "local-password"
SECURITY_TOKEN = "LOCALSECURITYTOKEN"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpsToLoopback(HTTPAdapter):
    """simple-salesforce hard-codes https and login.salesforce.com: send both to the local server."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def send(self, request, **kwargs):
        request.url = request.url.replace("https://login.salesforce.com", self.base)
        request.url = request.url.replace("https://" + self.base.removeprefix("http://"), self.base)
        return super().send(request, **kwargs)


@pytest.fixture(scope="module")
def server():
    port = free_port()
    proc = subprocess.Popen([str(BINARY), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(base + "/__control/dump", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    yield base
    proc.terminate()
    proc.wait(timeout=10)


def _https_session(server):
    session = requests.Session()
    session.mount("https://", HttpsToLoopback(server))
    return session


@pytest.fixture
def sf(server):
    session = _https_session(server)
    return Salesforce(
        username=USERNAME,
        # The OAuth path: the security token is appended to the password.
        password=PASSWORD + SECURITY_TOKEN,
        consumer_key=CONSUMER_KEY,
        consumer_secret=CONSUMER_SECRET,
        session=session,
        version="62.0",
    )


def test_login_returns_the_local_instance(sf, server):
    assert sf.sf_instance == server.removeprefix("http://")
    assert sf.session_id.startswith("00D")


def test_query_create_and_read_back(sf):
    created = sf.Contact.create({"FirstName": "Maria", "LastName": "C.", "Phone": "+39 333 123 4567"})
    assert created["success"] is True and created["id"].startswith("003") and len(created["id"]) == 18
    result = sf.query("SELECT Id, Name, Phone FROM Contact WHERE Phone = '+39 333 123 4567'")
    assert result["totalSize"] == 1
    record = result["records"][0]
    assert record["attributes"]["type"] == "Contact"
    assert record["Name"] == "Maria C."
    users = sf.query_all("SELECT Id, Username FROM User")
    assert any(u["Username"] == USERNAME for u in users["records"])


def test_composite_with_references(sf):
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {"method": "POST", "url": "/services/data/v62.0/sobjects/Case", "referenceId": "c",
             "body": {"Subject": "+393331234567 [1793]", "Origin": "WhatsApp"}},
            {"method": "POST", "url": "/services/data/v62.0/sobjects/CaseComment", "referenceId": "m",
             "body": {"ParentId": "@{c.id}", "CommentBody": "Hello 😀"}},
            {"method": "GET", "url": "/services/data/v62.0/query?q=SELECT+CaseNumber+FROM+Case+WHERE+Id+%3D+%27@{c.id}%27",
             "referenceId": "q"},
        ],
    }
    out = sf.restful("composite", method="POST", json=body)
    statuses = [r["httpStatusCode"] for r in out["compositeResponse"]]
    assert statuses == [201, 201, 200]
    assert out["compositeResponse"][2]["body"]["records"][0]["CaseNumber"]


def test_errors_raise_the_documented_exceptions(sf, server):
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.Contact.create({"FirstName": "No last name"})
    assert missing.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    with pytest.raises(SalesforceMalformedRequest) as bad_field:
        sf.query("SELECT Id, Nope FROM Contact")
    assert bad_field.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as audit:
        sf.CaseComment.create({"ParentId": "500Wt0000000001AAA", "CommentBody": "x",
                               "CreatedDate": "2026-11-24T09:58:10Z"})
    assert audit.value.content[0]["errorCode"] in ("MALFORMED_ID", "INVALID_FIELD_FOR_INSERT_UPDATE")

    # An expired session answers 401 INVALID_SESSION_ID, which simple-salesforce
    # recognises and answers by logging in again.
    logins = requests.get(server + "/__control/dump", timeout=5).json()["counters"]["logins"]
    old_session = sf.session_id
    requests.post(server + "/__control/expire-tokens", timeout=5)
    assert sf.query("SELECT Id FROM User")["totalSize"] >= 1
    assert sf.session_id != old_session
    assert requests.get(server + "/__control/dump", timeout=5).json()["counters"]["logins"] == logins + 1


def test_expired_session_without_credentials_to_refresh(server):
    sf = Salesforce(instance_url=server.replace("http://", "https://"), session_id="00Dbogus!AQnot-a-session",
                    session=_https_session(server), version="62.0")
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM User")


API = "/services/data/v62.0"


def control(server, path, body):
    response = requests.post(f"{server}/__control/{path}", json=body, timeout=5)
    assert response.status_code < 300, response.text
    return response


@pytest.fixture
def org(server):
    """Changes org settings for one test, then turns the rules off again."""
    yield lambda body: control(server, "settings", body)
    control(server, "settings", {"case_assignment_rule": {"owner": None}, "contact_duplicate_rule": False})


def new_user(server, name):
    username = f"{name}.{uuid.uuid4().hex[:8]}@acme.example"
    body = {"username": username, "email": username, "first_name": name, "last_name": "User"}
    return control(server, "users", body).json()["id"]


def test_sobject_collections(sf):
    records = [
        {"attributes": {"type": "Contact"}, "LastName": "Collected"},
        {"attributes": {"type": "Contact"}, "FirstName": "No last name"},
    ]
    partial = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert partial[0]["success"] is True and partial[0]["id"].startswith("003")
    assert partial[1]["success"] is False
    assert partial[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert partial[1]["errors"][0]["fields"] == ["LastName"]

    records[0]["LastName"] = "Rolled back"
    atomic = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})
    assert atomic[0]["success"] is False
    assert atomic[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert sf.query("SELECT Id FROM Contact WHERE LastName = 'Rolled back'")["totalSize"] == 0
    # Every data answer reports the allowance, which the client parses.
    assert sf.api_usage["api-usage"].used >= 1


def test_composite_subrequest_headers_are_per_subrequest(sf, server, org):
    agent = new_user(server, "agent")
    queue = new_user(server, "queue")
    org({"case_assignment_rule": {"owner": queue}})
    case = {"Subject": "assigned?", "OwnerId": agent}
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {"method": "POST", "url": f"{API}/sobjects/Case", "referenceId": "plain", "body": case},
            {"method": "POST", "url": f"{API}/sobjects/Case", "referenceId": "kept", "body": case,
             "httpHeaders": {"Sforce-Auto-Assign": "FALSE"}},
        ],
    }
    # The top-level header does not reach the subrequests: only their own does.
    out = sf.restful("composite", method="POST", json=body, headers={"Sforce-Auto-Assign": "FALSE"})
    results = {r["referenceId"]: r for r in out["compositeResponse"]}
    assert results["plain"]["httpStatusCode"] == 201
    plain_id = results["plain"]["body"]["id"]
    assert results["plain"]["httpHeaders"]["Location"] == f"{API}/sobjects/Case/{plain_id}"
    assert sf.Case.get(plain_id)["OwnerId"] == queue
    assert sf.Case.get(results["kept"]["body"]["id"])["OwnerId"] == agent
    # Called directly, the request's own header counts.
    direct = sf.Case.create(case, headers={"Sforce-Auto-Assign": "false"})
    assert sf.Case.get(direct["id"])["OwnerId"] == agent
    assigned = sf.Case.create(case)
    assert sf.Case.get(assigned["id"])["OwnerId"] == queue


@pytest.mark.parametrize("header", ["Content-Type", "authorization", "ACCEPT"])
def test_an_inherited_header_in_a_subrequest_fails_the_request(sf, header):
    subject = f"never saved {uuid.uuid4().hex[:8]}"
    body = {
        "allOrNone": False,
        "compositeRequest": [
            {"method": "POST", "url": f"{API}/sobjects/Case", "referenceId": "c",
             "body": {"Subject": subject}, "httpHeaders": {header: "application/json"}},
        ],
    }
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.restful("composite", method="POST", json=body)
    assert refused.value.status == 400
    assert isinstance(refused.value.content, list) and refused.value.content[0]["errorCode"]
    assert sf.query(f"SELECT Id FROM Case WHERE Subject = '{subject}'")["totalSize"] == 0


def test_org_rules(sf, server, org):
    # External ID fields are Unique: the clash names the field and the holder
    # in its message only, with `fields` empty, as a real org answers.
    field = "Conformance_Id__c"
    control(server, "settings", {"external_id": ["Case", field]})
    first = sf.Case.create({"Subject": "one", field: "c-1"})
    with pytest.raises(SalesforceMalformedRequest) as clash:
        sf.Case.create({"Subject": "two", field: "c-1"})
    error = clash.value.content[0]
    assert error["errorCode"] == "DUPLICATE_VALUE" and error["fields"] == []
    assert error["message"] == f"duplicate value found: {field} duplicates value on record with id: {first['id'][:15]}"

    # A restricted picklist refuses other values.
    control(server, "picklists", {"object": "Case", "field": "Priority", "values": ["High", "Low"]})
    assert sf.Case.create({"Subject": "p", "Priority": "High"})["success"] is True
    with pytest.raises(SalesforceMalformedRequest) as picklist:
        sf.Case.create({"Subject": "p", "Priority": "Urgent!"})
    assert picklist.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"

    # An alert-type duplicate rule, bypassed by the duplicate-rule header.
    org({"contact_duplicate_rule": True})
    contact = {"FirstName": "Dup", "LastName": uuid.uuid4().hex[:8]}
    sf.Contact.create(contact)
    with pytest.raises(SalesforceMalformedRequest) as duplicate:
        sf.Contact.create(contact)
    assert duplicate.value.content[0]["errorCode"] == "DUPLICATES_DETECTED"
    allowed = sf.Contact.create(contact, headers={"Sforce-Duplicate-Rule-Header": "allowSave=true"})
    assert allowed["success"] is True

    # A literal of the wrong type is an error, not zero rows.
    with pytest.raises(SalesforceMalformedRequest) as typed:
        sf.query("SELECT Id FROM User WHERE IsActive = 'true'")
    assert typed.value.content[0]["errorCode"] == "INVALID_FIELD"
