#!/usr/bin/env python3
"""python-nomad against a Dispatch server with ACLs, over HTTPS with client certificates.

Run by tests/python_nomad.rs with NOMAD_ADDR=https://127.0.0.1:PORT, DISPATCH_TEST_CA (the
CA that signed the server), DISPATCH_TEST_CERT / DISPATCH_TEST_KEY (a client certificate)
and DISPATCH_TEST_MANAGEMENT (the bootstrap token's secret). An application's token that
may dispatch `transcode` dispatches with `token=`, and gets python-nomad's Forbidden
exception (URLNotAuthorizedNomadException, 403 "Permission denied") for everything else.
Prints one line per check; exits 1 if any failed.
"""

import os
import sys
import traceback

try:
    import nomad
    import nomad.api.exceptions as exc
except ImportError as e:
    print(f"cannot import python-nomad: {e}; run scripts/test-deps.sh", file=sys.stderr)
    sys.exit(3)

ADDR = os.environ["NOMAD_ADDR"]
CA = os.environ["DISPATCH_TEST_CA"]
CERT = (os.environ["DISPATCH_TEST_CERT"], os.environ["DISPATCH_TEST_KEY"])
MANAGEMENT = os.environ["DISPATCH_TEST_MANAGEMENT"]

JOB = {
    "Job": {
        "ID": "transcode",
        "Type": "batch",
        "ParameterizedJob": {"MetaRequired": ["input"]},
        "TaskGroups": [
            {
                "Name": "tc",
                "Tasks": [
                    {
                        "Name": "tc",
                        "Driver": "exec",
                        "Config": {"command": "transcode.sh", "args": ["${NOMAD_META_input}"]},
                    }
                ],
            }
        ],
    }
}
OTHER = {"Job": dict(JOB["Job"], ID="other")}

RULES = 'job "transcode" {\n  capabilities = ["dispatch-job", "read-job"]\n}\n'


def client(token=None):
    return nomad.Nomad(address=ADDR, token=token, verify=CA, cert=CERT, timeout=10)


failures = []


def check(name, fn):
    try:
        fn()
        print(f"ok   {name}")
    except Exception:  # noqa: BLE001 - report every failure, then exit 1
        failures.append(name)
        print(f"FAIL {name}")
        traceback.print_exc(file=sys.stdout)


def forbidden(call):
    try:
        call()
    except exc.URLNotAuthorizedNomadException as e:
        assert e.nomad_resp.status_code == 403, e.nomad_resp.status_code
        assert e.nomad_resp.text == "Permission denied", e.nomad_resp.text
        return
    raise AssertionError("not refused")


m = client(MANAGEMENT)
state = {}


def bootstrap_is_done():
    try:
        client().acl.generate_bootstrap()
    except exc.BadRequestNomadException as e:
        assert e.nomad_resp.text.startswith("ACL bootstrap already done (reset index: "), e.nomad_resp.text
        return
    raise AssertionError("a second bootstrap was accepted")


def management_sets_up():
    m.job.register_job("transcode", JOB)
    m.job.register_job("other", OTHER)
    m.acl.create_policy("dispatch-transcode", {"Name": "dispatch-transcode", "Description": "app", "Rules": RULES})
    policy = m.acl.get_policy("dispatch-transcode")
    assert policy["RulesJSON"]["Jobs"][0]["Name"] == "transcode", policy
    assert [p["Name"] for p in m.acl.get_policies()] == ["dispatch-transcode"]
    token = m.acl.create_token({"Name": "uploader", "Type": "client", "Policies": ["dispatch-transcode"]})
    assert token["Type"] == "client" and token["Policies"] == ["dispatch-transcode"], token
    state["token"] = token


def app_dispatches():
    app = client(state["token"]["SecretID"])
    reply = app.job.dispatch_job("transcode", meta={"input": "in.mov"})
    child = reply["DispatchedJobID"]
    assert child.startswith("transcode/dispatch-"), reply
    job = app.job.get_job(child)
    assert job["DispatchedBy"] == state["token"]["AccessorID"], job
    assert app.acl.get_self_token()["Name"] == "uploader"


def app_is_refused_everything_else():
    app = client(state["token"]["SecretID"])
    forbidden(lambda: app.jobs.get_jobs())
    forbidden(lambda: app.job.dispatch_job("other", meta={"input": "x"}))
    forbidden(lambda: app.job.get_job("other"))
    forbidden(lambda: app.job.register_job("transcode", JOB))
    forbidden(lambda: app.job.deregister_job("transcode"))
    forbidden(lambda: app.agent.get_agent())
    forbidden(lambda: app.acl.get_tokens())
    forbidden(lambda: app.acl.create_policy("mine", {"Name": "mine", "Rules": ""}))
    forbidden(lambda: app.acl.create_token({"Type": "management"}))
    forbidden(lambda: app.system.initiate_garbage_collection())


def anonymous_and_unknown_tokens_are_refused():
    forbidden(lambda: client().jobs.get_jobs())
    forbidden(lambda: client("00000000-0000-0000-0000-000000000000").jobs.get_jobs())
    assert client().acl.get_self_token()["AccessorID"] == "anonymous"


def management_lists_and_revokes():
    accessor = state["token"]["AccessorID"]
    assert accessor in [t["AccessorID"] for t in m.acl.get_tokens()]
    assert m.acl.get_token(accessor)["Name"] == "uploader"
    assert "SecretID" not in m.acl.get_token(accessor), "secrets are never shown again"
    assert m.acl.delete_token(accessor)
    forbidden(lambda: client(state["token"]["SecretID"]).job.dispatch_job("transcode", meta={"input": "x"}))
    assert m.acl.delete_policy("dispatch-transcode")
    try:
        m.acl.get_policy("dispatch-transcode")
    except exc.URLNotFoundNomadException:
        return
    raise AssertionError("a deleted policy is still there")


for name, fn in [
    ("bootstrap_is_done", bootstrap_is_done),
    ("management_sets_up", management_sets_up),
    ("app_dispatches", app_dispatches),
    ("app_is_refused_everything_else", app_is_refused_everything_else),
    ("anonymous_and_unknown_tokens_are_refused", anonymous_and_unknown_tokens_are_refused),
    ("management_lists_and_revokes", management_lists_and_revokes),
]:
    check(name, fn)

if failures:
    print(f"{len(failures)} failed: {', '.join(failures)}")
    sys.exit(1)
