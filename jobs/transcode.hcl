# transcode: a parameterized batch job that converts one video per dispatch.
#
# This job is registered once and then started many times with
#
#   dispatch job dispatch -detach -meta input=<path-or-url> -meta profile=large transcode
#
# (scripts/dispatch.sh does exactly that for every line of a file). Each
# dispatch creates a child job that runs scripts/transcode.sh once.
job "transcode" {
  # Batch: run to completion once, never restarted after a successful exit.
  type = "batch"

  # Any datacenter the cluster (or the embedded local runner) knows about.
  datacenters = ["*"]

  # Job-level metadata: the defaults a dispatch can override with -meta.
  # `input` has an empty default only so that the key exists; it is required
  # below, so every dispatch must supply it.
  meta {
    input      = ""
    profile    = "small"
    output_dir = "/tmp/dispatch-videos"
  }

  # Makes this a parameterized job: registering it does not run anything,
  # only `job dispatch` does.
  #  - payload = "optional": a dispatch may attach a payload, but need not.
  #  - meta_required: a dispatch without -meta input=... is rejected.
  #  - meta_optional: the other meta keys a dispatch may set; when omitted,
  #    the job-level defaults above apply (profile "small"; output_dir is
  #    where results land when no bucket is configured).
  parameterized {
    payload       = "optional"
    meta_required = ["input"]
    meta_optional = ["profile", "output_dir"]
  }

  # One group with one task: a dispatch runs a single process.
  group "tc" {
    task "tc" {
      # Run the command directly on the host (no container).
      driver = "exec"

      config {
        # The server puts the repository's scripts/ directory on the task
        # PATH (`dispatch server -task-path`, default ./scripts), so the bare
        # name resolves to scripts/transcode.sh.
        command = "transcode.sh"

        # transcode.sh INPUT PROFILE, both taken from the dispatch's meta.
        # ${NOMAD_META_*} is interpolated when the task starts, not when the
        # file is parsed.
        args = ["${NOMAD_META_input}", "${NOMAD_META_profile}"]
      }

      # Environment of the task.
      #  - S3_BUCKET: set to a bucket name to upload results to
      #    s3://<bucket>/videos/<name>; empty = keep the file in OUTPUT_DIR.
      #  - OUTPUT_DIR: where transcode.sh writes out-<md5>-<profile>.mp4
      #    (the dispatch's output_dir meta).
      env {
        S3_BUCKET  = ""
        OUTPUT_DIR = "${NOMAD_META_output_dir}"
      }

      # What the scheduler reserves for one run: 1000 MHz of CPU, 256 MB RAM.
      resources {
        cpu    = 1000
        memory = 256
      }

      # Renders the s3cmd configuration into the task's local/ directory,
      # where transcode.sh looks for it (${NOMAD_TASK_DIR}/s3cfg.ini).
      # Here the credentials come from the environment the task was started
      # with; in real use they come from a secret store (e.g.
      # {{ with secret "..." }}). With an empty access_key, transcode.sh
      # does not upload.
      template {
        destination = "local/s3cfg.ini"
        data        = <<EOH
[default]
access_key = {{ env "AWS_ACCESS_KEY_ID" }}
secret_key = {{ env "AWS_SECRET_ACCESS_KEY" }}
EOH
      }
    }
  }
}
