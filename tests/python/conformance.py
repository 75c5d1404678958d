"""Drive the ovhform API simulator with the official python-ovh client (PyPI `ovh`, pinned in
requirements.txt). Run by tests/it/sim_python.rs, which starts the simulator and passes:

  SIM_ENDPOINT   http://127.0.0.1:PORT/1.0
  SIM_ROOT       http://127.0.0.1:PORT        (for the /_sim test hooks)
  SIM_AK, SIM_AS, SIM_CK                      credentials
  SIM_SERVER     service name of a Linux server with two disk groups

Simulated time is frozen; this script advances it through the /_sim hook instead of sleeping.
Prints one JSON summary line on success; exits non-zero with a message on any mismatch.
"""

import json
import os
import sys
import urllib.parse
import urllib.request

import ovh
import ovh.client
from ovh.exceptions import BadParametersError, InvalidCredential, ResourceNotFoundError


def fail(msg):
    print(f"CONFORMANCE FAILURE: {msg}", file=sys.stderr)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def hook(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(os.environ["SIM_ROOT"] + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read() or b"null")


ovh.client.ENDPOINTS["sim"] = os.environ["SIM_ENDPOINT"]
AK, AS, CK = os.environ["SIM_AK"], os.environ["SIM_AS"], os.environ["SIM_CK"]
SN = os.environ["SIM_SERVER"]
client = ovh.Client(endpoint="sim", application_key=AK, application_secret=AS, consumer_key=CK)
base = f"/dedicated/server/{SN}"
summary = {}

# Time delta through the unauthenticated /auth/time.
expect(isinstance(client.get("/auth/time", _need_auth=False), int), "/auth/time must be a bare integer")

# List and get.
servers = client.get("/dedicated/server")
expect(SN in servers, f"{SN} not listed: {servers}")
server = client.get(base)
for key in ("bootId", "bootScript", "efiBootloaderPath", "iam", "os", "rescueMail", "rootDevice"):
    expect(key in server, f"GET server lacks {key}")
summary["servers"] = len(servers)

# Query strings are part of the signed URL.
rescue = client.get(f"{base}/boot", bootType="rescue")
expect(rescue and all(client.get(f"{base}/boot/{b}")["bootType"] == "rescue" for b in rescue), "rescue boots")

# PUT bootScript: 200 with no body; GET shows bootId null; PUT bootId 1 clears the script.
script = "#!ipxe\necho Boot first local hdd in LEGACY mode\nsanboot --no-describe --drive 0x80\nexit 1\n"
expect(client.put(base, bootScript=script) is None, "PUT returns no body")
after = client.get(base)
expect(after["bootScript"] == script and after["bootId"] is None, f"after PUT bootScript: {after}")
client.put(base, bootId=1)
after = client.get(base)
expect(after["bootId"] == 1 and after["bootScript"] is None, f"after PUT bootId: {after}")

# Reinstall keeping disk group 2, then poll task and install/status to done.
task = client.post(f"{base}/reinstall", operatingSystem="debian12_64",
                   customizations={"hostname": "conformance-1"},
                   storage=[{"diskGroupId": 1}, {"diskGroupId": 2, "erase": False}])
expect(task["function"] == "reinstallServer" and task["status"] == "init", f"reinstall answer: {task}")
expect(set(task) == {"taskId", "function", "status", "comment", "startDate", "doneDate"}, f"short task: {task}")
try:
    client.post(f"{base}/reinstall", operatingSystem="debian12_64")
    fail("a second reinstall while one runs must fail")
except BadParametersError as e:
    expect("is already running" in str(e), f"TaskAlreadyExists message: {e}")

statuses, steps_seen, idle_message = [], 0, None
for _ in range(200):
    t = client.get(f"{base}/task/{task['taskId']}")
    if not statuses or statuses[-1] != t["status"]:
        statuses.append(t["status"])
    try:
        st = client.get(f"{base}/install/status")
        steps_seen = max(steps_seen, sum(1 for p in st["progress"] if p["status"] == "done"))
    except ResourceNotFoundError as e:
        idle_message = str(e)
    if t["status"] == "done":
        break
    # Small steps while queued (init 5 s, todo 10 s) so each status is seen, then bigger ones.
    hook("POST", "/_sim/clock/advance", {"seconds": 4 if t["status"] in ("init", "todo") else 60})
expect(statuses == ["init", "todo", "doing", "done"], f"task statuses: {statuses}")
try:
    client.get(f"{base}/install/status")
    fail("install/status must be 404 after the install")
except ResourceNotFoundError as e:
    idle_message = str(e)
expect(idle_message and "not being installed" in idle_message, f"idle message: {idle_message}")
expect(client.get(base)["os"] == "debian12_64", "os updated")
summary.update(statuses=statuses, steps_done_seen=steps_seen)

# Reboot.
reboot = client.post(f"{base}/reboot")
expect(reboot["function"] == "hardReboot", f"reboot: {reboot}")
expect(reboot["taskId"] in client.get(f"{base}/task", function="hardReboot"), "reboot task listed")

# IAM v2 through python-ovh's /v2 path handling.
urn = urllib.parse.quote(f"urn:v1:eu:resource:dedicatedServer:{SN}", safe="")
client.post(f"/v2/iam/resource/{urn}/tag", key="ovhform", value="conformance")
expect(client.get(base)["iam"]["tags"].get("ovhform") == "conformance", "tag visible in v1 iam.tags")

# A tampered signature: flip the last hex digit of X-Ovh-Signature on the way out.
tampered = ovh.Client(endpoint="sim", application_key=AK, application_secret=AS, consumer_key=CK)
real_request = tampered._session.request


def tamper(method, url, headers=None, **kw):
    if headers and "X-Ovh-Signature" in headers:
        sig = headers["X-Ovh-Signature"]
        headers["X-Ovh-Signature"] = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    return real_request(method, url, headers=headers, **kw)


tampered._session.request = tamper
try:
    tampered.get(base)
    fail("a tampered signature must be refused")
except BadParametersError as e:
    expect(str(e).startswith("Invalid signature"), f"tampered signature message: {e}")
    summary["tampered"] = type(e).__name__

# A wrong consumer key.
wrong = ovh.Client(endpoint="sim", application_key=AK, application_secret=AS, consumer_key="x" * 32)
try:
    wrong.get(base)
    fail("a wrong consumer key must be refused")
except InvalidCredential as e:
    expect(str(e).startswith("This credential is not valid"), f"wrong CK message: {e}")
    summary["wrong_consumer_key"] = type(e).__name__

print(json.dumps(summary))
