"""Conformance: the widely used simple-salesforce client talks to the local Salesforce.

If this client cannot log in, query, create, run a composite request and read
an error from it, the local Salesforce does not speak Salesforce's wire format.
"""

import os
import socket
import subprocess
import time
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
