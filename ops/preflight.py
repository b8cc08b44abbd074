#!/usr/bin/env python3
"""`make check-salesforce`: a read-only checklist of the org's set-up.

One line per set-up step of the product description (README, Salesforce
set-up), each ✓ (done), ✗ (missing: the integration will fail or park
conversations; what to click or set follows) or ! (works, but read the note).
The exit status is 1 when any line is ✗. `--json` prints the same lines as
one JSON object for machines.

Everything here is a read: a login, the versions list, describes, SOQL
queries over setup objects and `/limits`. Nothing is written to Salesforce,
and the session is not revoked (Salesforce may hand the worker the same one).
Secrets and the access token reach curl through its standard input as a
configuration (`curl -K -`), never on a command line, and are never printed.

Standard library only, with curl: operators run it without a Rust toolchain.

    preflight.py SECRET [--json]

SECRET is a file holding the Salesforce secret's JSON, or the AWS CLI's
`get-secret-value` answer holding it.
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

from opsjson import curl_quote, secure_base_url

PASS, FAIL, WARN = "✓", "✗", "!"
STATUS_NAMES = {PASS: "pass", FAIL: "fail", WARN: "warn"}

# Fields the worker sets itself; `case_fields` may not name them
# (docs/configuration.md, `case_fields`).
OWN_CASE_FIELDS = {"subject", "description", "origin", "ownerid", "contactid"}
PLACEHOLDER = re.compile(r"\{[a-z_.]+\}")
ID = re.compile(r"[A-Za-z0-9]{15}([A-Za-z0-9]{3})?")
USAGE_WARNING = 80.0


class Checklist:
    def __init__(self):
        self.lines = []

    def add(self, status, check, summary, fix=""):
        self.lines.append({"check": check, "status": status, "summary": summary, "fix": fix})

    def ok(self):
        return all(line["status"] != FAIL for line in self.lines)

    def print_text(self):
        for line in self.lines:
            print(f"{line['status']} {line['check']}: {line['summary']}")
            if line["fix"]:
                print(f"    {'fix' if line['status'] == FAIL else 'note'}: {line['fix']}")
        failed = sum(1 for line in self.lines if line["status"] == FAIL)
        warned = sum(1 for line in self.lines if line["status"] == WARN)
        print(f"{len(self.lines)} checks: {failed} to fix, {warned} to read. Nothing was written.")

    def print_json(self):
        lines = [dict(line, status=STATUS_NAMES[line["status"]]) for line in self.lines]
        print(json.dumps({"ok": self.ok(), "checks": lines}, ensure_ascii=False, indent=2))


def load_secret(path):
    try:
        value = json.load(open(path, encoding="utf-8"))
        if isinstance(value, dict) and "SecretString" in value:
            value = json.loads(value["SecretString"] or "")
    except (OSError, ValueError):
        value = None
    return value if isinstance(value, dict) else None


def http(url, token=None, form=None):
    """(status, JSON answer or None) of one request; status 0 when nothing answered."""
    config = [("url", url)]
    if token:
        config.append(("header", "Authorization: Bearer " + token))
    if form:
        config.append(("data-raw", urllib.parse.urlencode(form)))
    text = "".join(f"{option} = {curl_quote(value)}\n" for option, value in config)
    try:
        done = subprocess.run(
            ["curl", "-sS", "--max-time", "30", "--connect-timeout", "10", "-K", "-",
             "-w", "\n%{http_code}"],
            input=text, capture_output=True, text=True, check=False,
        )
    except OSError:
        return 0, None
    body, _, status = done.stdout.rpartition("\n")
    try:
        answer = json.loads(body) if body.strip() else None
    except ValueError:
        answer = None
    return int(status) if status.isdigit() else 0, answer


def error_of(answer):
    if isinstance(answer, list) and answer and isinstance(answer[0], dict):
        return f"{answer[0].get('errorCode', '')}: {answer[0].get('message', '').strip()}"
    return json.dumps(answer)[:200] if answer is not None else "no answer"


class Org:
    """A logged-in session's reads."""

    def __init__(self, instance, token, version):
        self.instance, self.token, self.version = instance, token, version
        self.data = f"{instance}/services/data/v{version}"
        self.described = {}

    def get(self, path):
        status, answer = http(f"{self.data}/{path}", self.token)
        if status == 403 and "REQUEST_LIMIT_EXCEEDED" in error_of(answer):
            raise Spent(error_of(answer))
        return status, answer

    def query(self, soql):
        status, answer = self.get("query?q=" + urllib.parse.quote(soql, safe=""))
        if status != 200 or not isinstance(answer, dict):
            raise Unreadable(f"the query answered HTTP {status} {error_of(answer)}")
        return answer.get("records") or []

    def describe(self, sobject):
        if sobject not in self.described:
            status, answer = self.get(f"sobjects/{sobject}/describe")
            self.described[sobject] = answer if status == 200 and isinstance(answer, dict) else None
        return self.described[sobject]


class Unreadable(Exception):
    """A read that should have worked did not."""


class Spent(Exception):
    """The org's API allowance is spent: every data call is refused."""


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_audience(login_url):
    """The assertion's `aud`: the worker's rule (src/salesforce/assertion.rs):
    login or test, whatever host takes the request; a loopback local
    Salesforce is its own audience."""
    host = (urllib.parse.urlsplit(login_url).hostname or "").lower()
    if host in ("127.0.0.1", "localhost", "::1") or host.startswith("127."):
        return login_url
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    return "https://login.salesforce.com"


def jwt_assertion(s, login_url):
    """An RS256 assertion valid 3 minutes, signed by openssl (python3's
    standard library has no RSA); the key goes to openssl in a private file,
    never on a command line. None, with the reason, when it cannot sign."""
    claims = {"iss": s["consumer_key"], "sub": s["username"],
              "aud": jwt_audience(login_url), "exp": int(time.time()) + 180}
    signing_input = b64url(b'{"alg":"RS256"}') + "." + b64url(json.dumps(claims).encode())
    directory = tempfile.mkdtemp()
    key_path = os.path.join(directory, "key.pem")
    try:
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="utf-8") as f:
            f.write(s["private_key"])
        signed = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path],
                                input=signing_input.encode(), capture_output=True, check=False)
    except OSError:
        return None, "openssl is not installed here: the jwt_bearer flow is checked with it"
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if signed.returncode != 0:
        return None, "private_key is not a PEM RSA private key openssl can sign with"
    return signing_input + "." + b64url(signed.stdout), None


def soql_string(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --- login --------------------------------------------------------------------


def login(c, s):
    """The login line; (instance, token, user id) or None."""
    login_url = (s.get("login_url") or "https://login.salesforce.com").rstrip("/")
    flow = s.get("auth_flow") or "password"
    if not secure_base_url(login_url):
        c.add(FAIL, "login", f"login_url {login_url} is not https",
              "set login_url to https://login.salesforce.com, https://test.salesforce.com or"
              " the org's My Domain URL (plain http only on a loopback host)")
        return None
    if flow not in ("password", "client_credentials", "jwt_bearer"):
        c.add(FAIL, "login", f"auth_flow {flow!r} is unknown",
              'set auth_flow to "password", "client_credentials" or "jwt_bearer"')
        return None
    needed = {
        "password": ["consumer_key", "consumer_secret", "username", "password"],
        "client_credentials": ["consumer_key", "consumer_secret"],
        "jwt_bearer": ["consumer_key", "username", "private_key"],
    }[flow]
    missing = [k for k in needed if not isinstance(s.get(k), str) or not s.get(k)]
    if missing:
        c.add(FAIL, "login", f"the secret has no {', '.join(missing)} (needed by the {flow} flow)",
              "fill them in the Salesforce secret (README, Configuration)")
        return None
    if flow == "jwt_bearer":
        assertion, problem = jwt_assertion(s, login_url)
        if problem:
            c.add(FAIL, "login", problem, "fix private_key in the Salesforce secret (runbook §4.4)")
            return None
        form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion)]
    else:
        form = [("grant_type", flow), ("client_id", s["consumer_key"]),
                ("client_secret", s["consumer_secret"])]
    if flow == "password":
        form += [("username", s["username"]),
                 ("password", s["password"] + (s.get("security_token") or ""))]
    status, answer = http(login_url + "/services/oauth2/token", form=form)
    answer = answer if isinstance(answer, dict) else {}
    if status == 200 and answer.get("access_token") and answer.get("instance_url"):
        instance = answer["instance_url"].rstrip("/")
        if not secure_base_url(instance):
            c.add(FAIL, "login", f"Salesforce answered an instance_url that is not https: {instance}",
                  "check login_url: it must be Salesforce's")
            return None
        who = f" as {s['username']}" if flow in ("password", "jwt_bearer") else ""
        c.add(PASS, "login", f"{flow} flow{who}; instance {instance}")
        user_id = (answer.get("id") or "").rstrip("/").rsplit("/", 1)[-1]
        return instance, answer["access_token"], user_id
    if status == 0:
        c.add(FAIL, "login", f"{login_url} did not answer", "check the URL, DNS, network and proxy")
        return None
    error = answer.get("error", "no error code")
    fix = {
        "invalid_client_id": "consumer_key is not the Consumer Key of a Connected App or External"
        " Client App of this org (Setup > App Manager > the app > View > Manage Consumer Details)",
        "invalid_client": "consumer_secret does not match the app's Consumer Secret",
    }.get(error, "")
    if flow == "password" and error in ("invalid_grant", "unsupported_grant_type"):
        fix = ("check username, password and security_token (the user active, not locked out,"
               " allowed from this network); orgs created since Summer '23 refuse the password"
               " flow until Setup > OAuth and OpenID Connect Settings > 'Allow OAuth"
               " Username-Password Flows' is on and, for an External Client App, its OAuth"
               " policies allow it; or switch auth_flow to client_credentials")
    elif flow == "jwt_bearer":
        description = answer.get("error_description", "")
        fix = {
            "invalid assertion": "the certificate on the app is not the one of private_key:"
            " upload the certificate of this key (runbook §4.4)",
            "audience is invalid": "login_url points at the wrong kind of org: login.salesforce.com"
            " or a production My Domain for production, test.salesforce.com for a sandbox",
            "user hasn't approved this consumer": "pre-authorise the API user: the app's policies"
            " > 'Admin approved users are pre-authorized', and the permission set with the app"
            " assigned to the user",
        }.get(description, fix or "check consumer_key, username and the app's JWT bearer settings")
    elif flow == "client_credentials" and error in ("invalid_grant", "unsupported_grant_type"):
        fix = ("enable the Client Credentials Flow on the app (External Client App: OAuth"
               " Settings > Flow Enablement; Connected App: Enable Client Credentials Flow) and"
               " set its Run As user; login_url must be the My Domain URL")
    c.add(FAIL, "login", f"refused: HTTP {status} {error}: {answer.get('error_description', '')}".rstrip(": "),
          fix or "read the error with the org's admin")
    return None


# --- the checks after login ---------------------------------------------------


def check_version(c, instance, version):
    status, answer = http(f"{instance}/services/data")
    versions = [v.get("version") for v in answer if isinstance(v, dict)] if isinstance(answer, list) else []
    if status != 200 or not versions:
        c.add(FAIL, "api_version", f"GET /services/data answered HTTP {status}",
              "check that the instance is a Salesforce org")
        return False
    if version in versions:
        c.add(PASS, "api_version", f"v{version} is served (newest v{versions[-1]})")
        return True
    c.add(FAIL, "api_version", f"v{version} is not served by this org (it serves v{versions[0]} to v{versions[-1]})",
          f'set api_version to "{versions[-1]}" or another served version')
    return False


def check_audit_fields(c, org, s, user_id):
    if not s.get("set_audit_fields"):
        c.add(PASS, "audit fields", "not used (set_audit_fields is false)")
        return
    assigned = org.query(
        f"SELECT PermissionSetId FROM PermissionSetAssignment WHERE AssigneeId = {soql_string(user_id)}")
    ids = [r.get("PermissionSetId") for r in assigned if r.get("PermissionSetId")]
    # The profile's own permission set is asked for directly as well: it
    # holds the profile's permissions whether or not an org lists it among
    # the user's assignments.
    users = org.query(f"SELECT ProfileId FROM User WHERE Id = {soql_string(user_id)}")
    profile = users[0].get("ProfileId") if users else None
    granting = []
    if profile:
        granting = org.query(
            "SELECT Id, Name, Label, IsOwnedByProfile, ProfileId FROM PermissionSet WHERE ProfileId = "
            + soql_string(profile) + " AND PermissionsCreateAuditFields = true")
    if ids and not granting:
        granting = org.query(
            "SELECT Id, Name, Label, IsOwnedByProfile, ProfileId FROM PermissionSet WHERE Id IN ("
            + ", ".join(soql_string(i) for i in ids) + ") AND PermissionsCreateAuditFields = true")
    if granting:
        g = granting[0]
        how = "its profile" if g.get("IsOwnedByProfile") else f"permission set {g.get('Label') or g.get('Name')}"
        c.add(PASS, "audit fields", f"the API user may set CreatedDate and CreatedById (through {how})")
        return
    c.add(FAIL, "audit fields", "the API user lacks 'Set Audit Fields upon Record Creation'"
          " (PermissionsCreateAuditFields): every comment would be refused",
          "Setup > User Interface: tick 'Enable \"Set Audit Fields upon Record Creation\" and"
          " \"Update Records with Inactive Owners\" User Permissions'; then give the API user a"
          " permission set with 'Set Audit Fields upon Record Creation' (Setup > Permission Sets);"
          " or set set_audit_fields to false")


def check_objects(c, org):
    described = {}
    for sobject in ("Case", "CaseComment", "Contact"):
        d = org.describe(sobject)
        described[sobject] = d
        if d is None:
            c.add(FAIL, f"access {sobject}", "the API user cannot read it (describe: not found)",
                  f"give the API user Read and Create on {sobject} in its profile or a permission set")
        elif not d.get("queryable") or not d.get("createable"):
            missing = [w for w, k in (("read", "queryable"), ("create", "createable")) if not d.get(k)]
            c.add(FAIL, f"access {sobject}", f"the API user cannot {' or '.join(missing)} it",
                  f"give the API user Read and Create on {sobject} in its profile or a permission set")
        else:
            c.add(PASS, f"access {sobject}", "read and create")
    return described


def check_users(c, org, s):
    comment_user = s.get("customer_comment_username")
    if comment_user:
        check_user(c, org, "customer_comment_username", comment_user)
    elif s.get("set_audit_fields"):
        c.add(FAIL, "customer_comment_username", "missing, and set_audit_fields needs it",
              "create a Salesforce user (full licence) that customer comments are posted as,"
              " and put its username in customer_comment_username")
    else:
        c.add(PASS, "customer_comment_username", "not used (set_audit_fields is false)")
    owner = s.get("default_owner_username")
    if owner:
        check_user(c, org, "default_owner_username", owner)
    else:
        c.add(PASS, "default_owner_username", "not set: Cases without a matching agent go to the API user")


def check_user(c, org, key, username):
    rows = org.query("SELECT Id, Username, IsActive, UserType FROM User WHERE Username = "
                     + soql_string(username))
    user = rows[0] if rows else None
    if user is None:
        c.add(FAIL, key, f"no user {username}", f"create the user in Setup > Users, or correct {key}")
    elif not user.get("IsActive"):
        c.add(FAIL, key, f"{username} is inactive",
              f"activate {username} in Setup > Users (Active), or name another user")
    elif user.get("UserType") != "Standard":
        c.add(FAIL, key, f"{username} has a {user.get('UserType')} licence, not a full one",
              "name a user with a Salesforce licence (UserType Standard): portal and Chatter"
              " users cannot own Cases or post as agents")
    else:
        c.add(PASS, key, f"{username} is active, full licence")


def field_of(describe, name):
    for f in (describe or {}).get("fields") or []:
        if f.get("name", "").lower() == name.lower():
            return f
    return None


def check_origin(c, case):
    origin = c.secret.get("case_origin", "WhatsApp")
    if origin is None:
        c.add(PASS, "case_origin", "null: Case.Origin is left unset")
        return
    field = field_of(case, "Origin")
    if field is None:
        c.add(FAIL, "case_origin", "Case.Origin is not visible to the API user",
              "give the API user read and edit access to Case Origin (field-level security)")
        return
    values = [v.get("value") for v in field.get("picklistValues") or [] if v.get("active")]
    if origin in values:
        c.add(PASS, "case_origin", f"{origin!r} is a Case Origin value")
        return
    restricted = field.get("restrictedPicklist")
    c.add(FAIL, "case_origin",
          f"{origin!r} is not among Case Origin's values ({', '.join(values) or 'none'})"
          + ("; the picklist is restricted: every Case would be refused" if restricted else ""),
          f"Setup > Object Manager > Case > Fields & Relationships > Case Origin > Values: New,"
          f" add {origin!r}; or set case_origin to one of the values")


def check_external_id(c, case):
    name = c.secret.get("case_external_id_field")
    if not name:
        c.add(PASS, "case_external_id_field", "not used (duplicates are found by querying)")
        return
    field = field_of(case, name)
    fix = (f"Setup > Object Manager > Case > Fields & Relationships: a Text field {name} with"
           " 'Unique' and 'External ID' ticked, editable by the API user")
    if field is None:
        c.add(FAIL, "case_external_id_field", f"Case has no field {name} the API user can see", fix)
        return
    wrong = [what for what, good in (
        ("not text", field.get("type") == "string"),
        ("not External ID", field.get("externalId")),
        ("not Unique", field.get("unique")),
        ("not createable", field.get("createable")),
    ) if not good]
    if wrong:
        c.add(FAIL, "case_external_id_field", f"Case.{field['name']} is {', '.join(wrong)}", fix)
    else:
        c.add(PASS, "case_external_id_field", f"Case.{field['name']} is a unique External ID text field")


def check_account(c, org):
    account = c.secret.get("contact_account_id")
    if not account:
        c.add(PASS, "contact_account_id", "not set: new Contacts have no Account (private to their owner)")
        return
    fix = "put the 15- or 18-character Id of an Account the API user can see (from its URL)"
    if not isinstance(account, str) or not ID.fullmatch(account) or not account.startswith("001"):
        c.add(FAIL, "contact_account_id", f"{account!r} is not an Account Id", fix)
        return
    rows = org.query(f"SELECT Id, Name FROM Account WHERE Id = {soql_string(account)}")
    if rows:
        c.add(PASS, "contact_account_id", f"Account {rows[0].get('Name')!r}")
    else:
        c.add(FAIL, "contact_account_id", f"no Account {account} visible to the API user", fix)


def literal_problem(field, value):
    """Why Salesforce would refuse `value` for `field`, or None."""
    kind = field.get("type")
    if value is None:
        return None if field.get("nillable") else "the field cannot be empty"
    if kind == "boolean":
        return None if isinstance(value, bool) else "a checkbox takes true or false"
    if kind in ("double", "currency", "percent", "int"):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number field takes a number"
    if isinstance(value, (dict, list)):
        return "the value must be a string, number, boolean or null"
    text = value if isinstance(value, str) else json.dumps(value)
    if isinstance(value, str) and PLACEHOLDER.search(value):
        return None  # filled per conversation; its length is checked then
    if kind in ("string", "textarea", "email", "phone", "url", "picklist") and field.get("length") \
            and len(text.encode("utf-16-le")) // 2 > field["length"]:
        return f"longer than the field's {field['length']} characters"
    if kind == "picklist" and field.get("restrictedPicklist"):
        values = [v.get("value") for v in field.get("picklistValues") or [] if v.get("active")]
        if text not in values:
            return f"not one of the restricted picklist's values ({', '.join(values)})"
    if kind in ("reference", "id") and not ID.fullmatch(text):
        return "not a record Id"
    return None


def check_case_fields(c, case):
    extra = c.secret.get("case_fields")
    if not extra:
        c.add(PASS, "case_fields", "none")
        return
    if not isinstance(extra, dict):
        c.add(FAIL, "case_fields", "is not a JSON object", 'write it as {"Field__c": value, ...}')
        return
    ext = (c.secret.get("case_external_id_field") or "").lower()
    for name, value in extra.items():
        check = f"case_fields.{name}"
        if name.lower() in OWN_CASE_FIELDS or (ext and name.lower() == ext):
            c.add(FAIL, check, "the worker sets this field itself", f"remove {name} from case_fields")
            continue
        field = field_of(case, name)
        if field is None:
            c.add(FAIL, check, f"Case has no field {name} the API user can see",
                  "correct the API name (Setup > Object Manager > Case > Fields & Relationships),"
                  " or give the API user access to it (field-level security)")
        elif not field.get("createable"):
            c.add(FAIL, check, f"Case.{field['name']} cannot be set on create by the API user",
                  "make the field editable for the API user (field-level security), or remove it")
        else:
            problem = literal_problem(field, value)
            if problem:
                c.add(FAIL, check, f"{json.dumps(value, ensure_ascii=False)}: {problem}",
                      "correct the value (the Case would be created without this field)")
            else:
                c.add(PASS, check, f"createable {field.get('type')}, value accepted")


def check_rules(c, org):
    rules = org.query("SELECT Id, Name FROM AssignmentRule WHERE SobjectType = 'Case' AND Active = true")
    if rules:
        c.add(WARN, "Case assignment rule", f"{rules[0].get('Name')!r} is active",
              "the worker sends Sforce-Auto-Assign: FALSE, so the Cases and comments it writes"
              " keep the agent as owner; Cases edited by people or other tools are reassigned by it")
    else:
        c.add(PASS, "Case assignment rule", "none active: Cases keep the owner the worker sets")
    # The worker's write path does not depend on the rule: a batch's new Cases
    # go in one Composite whose every subrequest carries the header, where
    # Salesforce documents it (not a Composite Graph, whose node headers it
    # does not document).
    c.add(PASS, "Batch writes", "one Composite per batch, Sforce-Auto-Assign: FALSE on each Contact, Case"
          " and comment subrequest, with or without an active assignment rule")
    rules = org.query(
        "SELECT Id, DeveloperName FROM DuplicateRule WHERE SobjectType = 'Contact' AND IsActive = true")
    if rules:
        names = ", ".join(r.get("DeveloperName", "?") for r in rules)
        c.add(WARN, "Contact duplicate rules", f"active: {names}",
              "an alerting rule is passed with Sforce-Duplicate-Rule-Header allowSave=true when the"
              " worker creates a customer's Contact; a blocking rule refuses that Contact and the"
              " conversation is parked: make such a rule an alert (Setup > Duplicate Rules > Action on"
              " Create: Allow, with Alert) or let the API user bypass it")
    else:
        c.add(PASS, "Contact duplicate rules", "none active")


def check_usage(c, org):
    status, limits = org.get("limits")
    daily = (limits or {}).get("DailyApiRequests") if isinstance(limits, dict) else None
    if status != 200 or not isinstance(daily, dict):
        c.add(FAIL, "API usage", f"GET /limits answered HTTP {status} {error_of(limits)}",
              "give the API user 'View Setup and Configuration' or read the limits in Setup > Company Information")
        return
    top, left = daily.get("Max") or 0, daily.get("Remaining") or 0
    share = (top - left) / top * 100 if top else 100.0
    summary = f"DailyApiRequests: {left:,} of {top:,} remaining ({share:.1f}% used in the last 24 hours)"
    if left <= 0:
        c.add(FAIL, "API usage", summary, "the allowance is spent: conversations wait in the queue"
              " until it recovers; buy more or find the other caller (Setup > Company Information)")
    elif share >= USAGE_WARNING:
        c.add(WARN, "API usage", summary, "over 80% used; at 100% conversations wait in the queue")
    else:
        c.add(PASS, "API usage", summary)


SESSION_CHECKS = ["api_version", "audit fields", "access Case", "access CaseComment", "access Contact",
                  "customer_comment_username", "default_owner_username", "case_origin",
                  "case_external_id_field", "contact_account_id", "case_fields",
                  "Case assignment rule", "Batch writes", "Contact duplicate rules", "API usage"]


def run(secret):
    c = Checklist()
    c.secret = secret
    version = str(secret.get("api_version") or "62.0").lstrip("vV")
    session = login(c, secret)
    if session is None:
        for check in SESSION_CHECKS:
            c.add(WARN, check, "not checked: no session")
        return c
    instance, token, user_id = session
    if not check_version(c, instance, version):
        for check in SESSION_CHECKS[1:]:
            c.add(WARN, check, "not checked: the API version is not served")
        return c
    org = Org(instance, token, version)
    # Each step with the line a failed read is reported on.
    steps = [
        ("audit fields", lambda: check_audit_fields(c, org, secret, user_id)),
        ("access", lambda: check_objects(c, org)),
        ("users", lambda: check_users(c, org, secret)),
        ("case_origin", lambda: check_origin(c, org.describe("Case"))),
        ("case_external_id_field", lambda: check_external_id(c, org.describe("Case"))),
        ("contact_account_id", lambda: check_account(c, org)),
        ("case_fields", lambda: check_case_fields(c, org.describe("Case"))),
        ("rules", lambda: check_rules(c, org)),
        ("API usage", lambda: check_usage(c, org)),
    ]
    for check, step in steps:
        try:
            step()
        except Unreadable as e:
            c.add(FAIL, check, f"could not be read: {e}",
                  "the API user needs API Enabled and View Setup and Configuration (profile or"
                  " permission set): setup objects are hidden without it")
        except Spent as e:
            c.add(FAIL, "API usage", f"every call is refused: {e}",
                  "the org's daily allowance is spent: conversations wait in the queue until it"
                  " recovers; find the other caller or buy more (Setup > Company Information)")
            break
    return c


def main(argv):
    args = [a for a in argv if a != "--json"]
    if len(args) != 1:
        print("usage: preflight.py SECRET [--json]", file=sys.stderr)
        return 2
    secret = load_secret(args[0])
    if secret is None:
        print("error: the Salesforce secret does not hold a JSON object", file=sys.stderr)
        return 2
    if not secret:
        print("error: the Salesforce secret is empty ({}): fill it (README, Configuration)", file=sys.stderr)
        return 1
    c = run(secret)
    if "--json" in argv:
        c.print_json()
    else:
        c.print_text()
    return 0 if c.ok() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
