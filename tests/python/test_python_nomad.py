#!/usr/bin/env python3
"""Drive a running Dispatch server with the real python-nomad client.

Run by tests/python_nomad.rs with NOMAD_ADDR=http://127.0.0.1:PORT. Prints one line per
check; any failed `assert` exits non-zero with a traceback.
"""

import base64
import os
import sys
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

def check(name):
    """Print the check name; `ok` finishes the line."""
    print(f"check: {name} ... ", end="", flush=True)


def ok(detail=""):
    print("ok" + (f" ({detail})" if detail else ""), flush=True)


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


def main():
    addr = os.environ["NOMAD_ADDR"]
    url = urlparse(addr)
    n = nomad.Nomad(address=addr, timeout=10)

    check("status.leader.get_leader")
    leader = n.status.leader.get_leader()
    assert leader == f"{url.hostname}:{url.port}", leader
    ok(leader)

    check("agent.get_agent")
    agent = n.agent.get_agent()
    assert "config" in agent and "member" in agent, agent
    ok(agent["member"].get("Name", ""))

    check("jobs.register_job(transcode)")
    reg = n.jobs.register_job(JOB)
    assert "JobModifyIndex" in reg, reg
    ok(f"JobModifyIndex={reg['JobModifyIndex']}")

    check("job.get_job(transcode)")
    job = n.job.get_job("transcode")
    assert job["ID"] == "transcode", job
    assert job["Type"] == "batch", job
    assert job["ParameterizedJob"]["MetaRequired"] == ["input"], job["ParameterizedJob"]
    assert not job["Stop"], job
    ok()

    children = []

    check("dispatch_job(meta={input})")
    d = n.job.dispatch_job("transcode", meta={"input": "a.mp4"})
    child = d["DispatchedJobID"]
    assert child.startswith("transcode/dispatch-"), d
    assert "EvalID" in d, d
    children.append(child)
    ok(child)

    check("dispatch_job with payload, child read back")
    data = b"hello \x00\xff payload"
    d = n.job.dispatch_job(
        "transcode",
        meta={"input": "b.mp4"},
        payload=base64.b64encode(data).decode(),
    )
    child = d["DispatchedJobID"]
    children.append(child)
    cj = n.job.get_job(child)
    assert cj["ID"] == child, cj
    assert base64.b64decode(cj["Payload"]) == data, cj.get("Payload")
    assert cj["Meta"] == {"input": "b.mp4", "profile": "small"}, cj["Meta"]
    assert cj["ParentID"] == "transcode", cj.get("ParentID")
    assert cj["Dispatched"] is True, cj.get("Dispatched")
    assert cj["Status"] == "pending", cj.get("Status")
    ok(child)

    check("dispatch_job(id_prefix_template=run1)")
    d = n.job.dispatch_job("transcode", meta={"input": "c.mp4"}, id_prefix_template="run1")
    child = d["DispatchedJobID"]
    assert child.startswith("transcode/dispatch-run1-"), d
    children.append(child)
    ok(child)

    check("dispatch_job(idempotency_token=...) twice gives one child")
    d1 = n.job.dispatch_job("transcode", meta={"input": "d.mp4"}, idempotency_token="tok-1")
    d2 = n.job.dispatch_job("transcode", meta={"input": "d.mp4"}, idempotency_token="tok-1")
    assert d1["DispatchedJobID"] == d2["DispatchedJobID"], (d1, d2)
    children.append(d1["DispatchedJobID"])
    ok(d1["DispatchedJobID"])

    check("get_summary Children.Pending")
    summary = n.job.get_summary("transcode")
    assert summary["Children"]["Pending"] == len(children), (summary, len(children))
    ok(f"Pending={summary['Children']['Pending']}")

    check("jobs.get_jobs(prefix=transcode/) lists exactly the children")
    listed = sorted(j["ID"] for j in n.jobs.get_jobs(prefix="transcode/"))
    assert listed == sorted(children), (listed, children)
    for stub in n.jobs.get_jobs(prefix="transcode/"):
        assert stub["ParentID"] == "transcode", stub
    ok(f"{len(listed)} children")

    check("jobs.parse(HCL2)")
    parsed = n.jobs.parse(HCL)
    assert parsed["Name"] == "resize", parsed
    assert parsed["Type"] == "batch", parsed
    ok(f"Name={parsed['Name']} Type={parsed['Type']}")

    check("missing required meta -> BadRequestNomadException")
    e = expect_raises(exc.BadRequestNomadException, n.job.dispatch_job, "transcode", meta={})
    assert "Dispatch did not provide required meta keys: [input]" in e.nomad_resp.text, e.nomad_resp.text
    ok(e.nomad_resp.text.strip())

    check("unpermitted meta -> BadRequestNomadException")
    e = expect_raises(
        exc.BadRequestNomadException,
        n.job.dispatch_job,
        "transcode",
        meta={"input": "x", "foo": "bar"},
    )
    assert "unpermitted metadata keys: [foo]" in e.nomad_resp.text, e.nomad_resp.text
    ok(e.nomad_resp.text.strip())

    check("dispatch of an unknown job -> URLNotFoundNomadException")
    e = expect_raises(exc.URLNotFoundNomadException, n.job.dispatch_job, "nope", meta={"input": "x"})
    ok(e.nomad_resp.text.strip())

    check("get_job(nope) -> URLNotFoundNomadException")
    e = expect_raises(exc.URLNotFoundNomadException, n.job.get_job, "nope")
    ok(e.nomad_resp.text.strip())

    check("deregister_job(transcode)")
    dereg = n.job.deregister_job("transcode")
    assert "EvalID" in dereg, dereg
    job = n.job.get_job("transcode")
    assert job["Stop"] is True, job.get("Stop")
    for child in children:
        status = n.job.get_job(child)["Status"]
        assert status == "dead", (child, status)
    ok(f"Stop=true, {len(children)} children dead")

    check("dispatch to a stopped job -> BadRequestNomadException")
    e = expect_raises(
        exc.BaseNomadException, n.job.dispatch_job, "transcode", meta={"input": "x"}
    )
    assert 'Specified job "transcode" is stopped' in e.nomad_resp.text, e.nomad_resp.text
    ok(f"{type(e).__name__}: {e.nomad_resp.text.strip()}")

    check("deregister_job(purge=True) then get_job -> URLNotFoundNomadException")
    n.job.deregister_job("transcode", purge=True)
    expect_raises(exc.URLNotFoundNomadException, n.job.get_job, "transcode")
    ok()

    print("all python-nomad checks passed")


if __name__ == "__main__":
    main()
