#!/usr/bin/env python3
"""Drive a running Dispatch server with the real python-nomad client.

Run by tests/python_nomad.rs with NOMAD_ADDR=http://127.0.0.1:PORT. Prints one line per
check; every check runs, then the script exits 1 if any failed.
"""

import base64
import os
import sys
import traceback
from urllib.parse import urlparse

try:
    import nomad
    import nomad.api.exceptions as exc
except ImportError as e:  # the Rust test turns this exit code into a clear failure
    print(f"cannot import python-nomad: {e}; run scripts/test-deps.sh", file=sys.stderr)
    sys.exit(3)

JOB = {
    "Job": {
        "ID": "transcode",
        "Name": "transcode",
        "Type": "batch",
        "Datacenters": ["dc1"],
        "Meta": {"input": "", "profile": "small"},
        "ParameterizedJob": {
            "Payload": "optional",
            "MetaRequired": ["input"],
            "MetaOptional": ["profile"],
        },
        "TaskGroups": [
            {
                "Name": "tc",
                "Count": 1,
                "Tasks": [
                    {
                        "Name": "tc",
                        "Driver": "exec",
                        "Config": {
                            "command": "transcode.sh",
                            "args": ["${NOMAD_META_input}", "${NOMAD_META_profile}"],
                        },
                        "Resources": {"CPU": 1000, "MemoryMB": 256},
                    }
                ],
            }
        ],
    }
}

HCL = """
job "resize" {
  type        = "batch"
  datacenters = ["dc1"]

  parameterized {
    payload       = "required"
    meta_required = ["size"]
  }

  group "r" {
    task "r" {
      driver = "exec"
      config {
        command = "resize.sh"
        args    = ["${NOMAD_META_size}"]
      }
      resources {
        cpu    = 200
        memory = 64
      }
    }
  }
}
"""

CHECKS = []


def check(name):
    """Register a check; checks run in order and share `ctx` (the client, the children)."""

    def register(fn):
        CHECKS.append((name, fn))
        return fn

    return register


def expect_raises(cls, fn, *args, **kwargs):
    """Call fn and return the python-nomad exception of class `cls` it raised."""
    try:
        result = fn(*args, **kwargs)
    except cls as e:
        return e
    except exc.BaseNomadException as e:
        text = getattr(getattr(e, "nomad_resp", None), "text", e)
        raise AssertionError(f"expected {cls.__name__}, got {type(e).__name__}: {text}")
    raise AssertionError(f"expected {cls.__name__}, got a result: {result!r}")


@check("status.leader.get_leader")
def _(n, ctx):
    leader = n.status.leader.get_leader()
    assert leader == ctx["leader"], leader
    return leader


@check("agent.get_agent")
def _(n, ctx):
    agent = n.agent.get_agent()
    assert "config" in agent and "member" in agent, agent
    return agent["member"].get("Name", "")


@check("jobs.register_job(transcode)")
def _(n, ctx):
    reg = n.jobs.register_job(JOB)
    assert "JobModifyIndex" in reg, reg
    return f"JobModifyIndex={reg['JobModifyIndex']}"


@check("job.get_job(transcode)")
def _(n, ctx):
    job = n.job.get_job("transcode")
    assert job["ID"] == "transcode", job
    assert job["Type"] == "batch", job
    assert job["ParameterizedJob"]["MetaRequired"] == ["input"], job["ParameterizedJob"]
    assert not job["Stop"], job


@check("dispatch_job(meta={input})")
def _(n, ctx):
    d = n.job.dispatch_job("transcode", meta={"input": "a.mp4"})
    child = d["DispatchedJobID"]
    assert child.startswith("transcode/dispatch-"), d
    assert "EvalID" in d, d
    ctx["children"].append(child)
    return child


@check("dispatch_job(payload=...), child read back with get_job")
def _(n, ctx):
    data = b"hello \x00\xff payload"
    d = n.job.dispatch_job(
        "transcode", meta={"input": "b.mp4"}, payload=base64.b64encode(data).decode()
    )
    child = d["DispatchedJobID"]
    ctx["children"].append(child)
    cj = n.job.get_job(child)
    assert cj["ID"] == child, cj
    assert base64.b64decode(cj["Payload"]) == data, cj.get("Payload")
    assert cj["Meta"] == {"input": "b.mp4", "profile": "small"}, cj["Meta"]
    assert cj["ParentID"] == "transcode", cj.get("ParentID")
    assert cj["Dispatched"] is True, cj.get("Dispatched")
    assert cj["Status"] == "pending", cj.get("Status")
    return child


@check("dispatch_job(id_prefix_template=run1)")
def _(n, ctx):
    d = n.job.dispatch_job("transcode", meta={"input": "c.mp4"}, id_prefix_template="run1")
    child = d["DispatchedJobID"]
    assert child.startswith("transcode/dispatch-run1-"), d
    ctx["children"].append(child)
    return child


@check("dispatch_job(idempotency_token=...) twice gives one child")
def _(n, ctx):
    d1 = n.job.dispatch_job("transcode", meta={"input": "d.mp4"}, idempotency_token="tok-1")
    ctx["children"].append(d1["DispatchedJobID"])
    d2 = n.job.dispatch_job("transcode", meta={"input": "d.mp4"}, idempotency_token="tok-1")
    assert d1["DispatchedJobID"] == d2["DispatchedJobID"], (d1, d2)
    return d1["DispatchedJobID"]


@check("job.get_summary Children.Pending")
def _(n, ctx):
    summary = n.job.get_summary("transcode")
    assert summary["Children"]["Pending"] == len(ctx["children"]), (summary, ctx["children"])
    return f"Pending={summary['Children']['Pending']}"


@check("jobs.get_jobs(prefix=transcode/) lists exactly the children")
def _(n, ctx):
    stubs = n.jobs.get_jobs(prefix="transcode/")
    listed = sorted(j["ID"] for j in stubs)
    assert listed == sorted(ctx["children"]), (listed, ctx["children"])
    for stub in stubs:
        assert stub["ParentID"] == "transcode", stub
    return f"{len(listed)} children"


@check("jobs.parse(HCL2 parameterized job)")
def _(n, ctx):
    try:
        parsed = n.jobs.parse(HCL)
    except exc.BaseNomadException as e:
        raise AssertionError(f"{type(e).__name__}: {e.nomad_resp.text.strip()}") from None
    assert parsed["Name"] == "resize", parsed
    assert parsed["Type"] == "batch", parsed
    return f"Name={parsed['Name']} Type={parsed['Type']}"


@check("missing required meta -> BadRequestNomadException")
def _(n, ctx):
    e = expect_raises(exc.BadRequestNomadException, n.job.dispatch_job, "transcode", meta={})
    text = e.nomad_resp.text
    assert "Dispatch did not provide required meta keys: [input]" in text, text
    return text.strip()


@check("unpermitted meta -> BadRequestNomadException")
def _(n, ctx):
    e = expect_raises(
        exc.BadRequestNomadException,
        n.job.dispatch_job,
        "transcode",
        meta={"input": "x", "foo": "bar"},
    )
    text = e.nomad_resp.text
    assert "unpermitted metadata keys: [foo]" in text, text
    return text.strip()


@check("dispatch_job of an unknown job -> URLNotFoundNomadException")
def _(n, ctx):
    e = expect_raises(exc.URLNotFoundNomadException, n.job.dispatch_job, "nope", meta={"input": "x"})
    return e.nomad_resp.text.strip()


@check("job.get_job(nope) -> URLNotFoundNomadException")
def _(n, ctx):
    e = expect_raises(exc.URLNotFoundNomadException, n.job.get_job, "nope")
    return e.nomad_resp.text.strip()


@check("job.deregister_job(transcode): Stop, children dead")
def _(n, ctx):
    dereg = n.job.deregister_job("transcode")
    assert "EvalID" in dereg, dereg
    job = n.job.get_job("transcode")
    assert job["Stop"] is True, job.get("Stop")
    for child in ctx["children"]:
        status = n.job.get_job(child)["Status"]
        assert status == "dead", (child, status)
    return f"{len(ctx['children'])} children dead"


@check("dispatch_job of a stopped job -> error 'is stopped'")
def _(n, ctx):
    e = expect_raises(exc.BaseNomadException, n.job.dispatch_job, "transcode", meta={"input": "x"})
    text = e.nomad_resp.text
    assert 'Specified job "transcode" is stopped' in text, text
    return f"{type(e).__name__}: {text.strip()}"


@check("system.initiate_garbage_collection(): dead children removed, still counted dead")
def _(n, ctx):
    n.system.initiate_garbage_collection()
    for child in ctx["children"]:
        expect_raises(exc.URLNotFoundNomadException, n.job.get_job, child)
    summary = n.job.get_summary("transcode")
    assert summary["Children"]["Dead"] == len(ctx["children"]), summary
    return f"{len(ctx['children'])} children collected"


@check("job.deregister_job(purge=True), then get_job -> URLNotFoundNomadException")
def _(n, ctx):
    n.job.deregister_job("transcode", purge=True)
    expect_raises(exc.URLNotFoundNomadException, n.job.get_job, "transcode")


def main():
    addr = os.environ["NOMAD_ADDR"]
    url = urlparse(addr)
    n = nomad.Nomad(address=addr, timeout=10)
    ctx = {"host": url.hostname, "port": url.port, "children": []}
    # a standby names another server as the leader
    ctx["leader"] = os.environ.get("DISPATCH_EXPECT_LEADER", f"{url.hostname}:{url.port}")
    failed = []
    for name, fn in CHECKS:
        print(f"check: {name} ... ", end="", flush=True)
        try:
            detail = fn(n, ctx)
        except Exception as e:  # report every check, then fail at the end
            failed.append(name)
            print(f"FAIL\n    {type(e).__name__}: {e}", flush=True)
            traceback.print_exc(limit=-1)
            continue
        print("ok" + (f" ({detail})" if detail else ""), flush=True)
    print(f"{len(CHECKS) - len(failed)}/{len(CHECKS)} python-nomad checks passed")
    if failed:
        print("failed: " + "; ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
