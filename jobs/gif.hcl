# The seed GIF pipeline as one parameterized job: four steps that run one after another in
# one group, sharing the group's alloc/ directory (Dispatch's `depends_on` extension: a task
# starts only after the tasks it names FINISHED; a failed step fails the dispatch).
#
#   dispatch job run jobs/gif.hcl
#   dispatch job dispatch -meta input=/path/or/https/url.mp4 -meta output_dir=/tmp/gifs gif
#
# Meta:
#   input       (required) a local path or an http(s) URL of a video
#   width       (optional) GIF width in pixels, default 480
#   output_dir  (optional) where "publish" copies the GIF, default /tmp/dispatch-gifs
#   publish_url (optional) if set, "publish" POSTs the GIF there (curl) instead of copying
job "gif" {
  type        = "batch"
  datacenters = ["*"]

  parameterized {
    payload       = "forbidden"
    meta_required = ["input"]
    meta_optional = ["width", "output_dir", "publish_url"]
  }

  meta {
    width       = "480"
    output_dir  = "/tmp/dispatch-gifs"
    publish_url = ""
  }

  group "pipeline" {
    # A failed step is retried once after 2 s, then the dispatch fails.
    restart {
      attempts = 1
      delay    = "2s"
      mode     = "fail"
    }
    reschedule {
      attempts = 0
    }

    # 1. Get the source video (download, or copy a local file).
    task "download" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args = ["-c", <<-EOT
          set -eu
          case "$GIF_INPUT" in
            http://*|https://*) curl -fsSL -o alloc/input.video "$GIF_INPUT" ;;
            *) cp "$GIF_INPUT" alloc/input.video ;;
          esac
          echo "got $(wc -c < alloc/input.video) bytes from $GIF_INPUT"
        EOT
        ]
      }
      env {
        GIF_INPUT = "${NOMAD_META_input}"
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }

    # 2. Build a 256-colour palette from the video.
    task "palettegen" {
      driver     = "raw_exec"
      depends_on = ["download"]
      config {
        command = "ffmpeg"
        args = ["-nostdin", "-y", "-loglevel", "error", "-i", "alloc/input.video",
                "-vf", "fps=10,scale=${NOMAD_META_width}:-1:flags=lanczos,palettegen",
                "alloc/palette.png"]
      }
      resources {
        cpu    = 1000
        memory = 256
      }
    }

    # 3. Render the GIF with that palette.
    task "paletteuse" {
      driver     = "raw_exec"
      depends_on = ["palettegen"]
      config {
        command = "ffmpeg"
        args = ["-nostdin", "-y", "-loglevel", "error", "-i", "alloc/input.video", "-i", "alloc/palette.png",
                "-filter_complex", "fps=10,scale=${NOMAD_META_width}:-1:flags=lanczos[x];[x][1:v]paletteuse",
                "alloc/output.gif"]
      }
      resources {
        cpu    = 1000
        memory = 256
      }
    }

    # 4. Publish: POST to publish_url when given, else copy into output_dir.
    task "publish" {
      driver     = "raw_exec"
      depends_on = ["paletteuse"]
      config {
        command = "/bin/sh"
        args = ["-c", <<-EOT
          set -eu
          name="$(echo "$NOMAD_JOB_ID" | tr '/' '_').gif"
          if [ -n "$PUBLISH_URL" ]; then
            curl -fsS -X POST --data-binary @alloc/output.gif -H "Content-Type: image/gif" "$PUBLISH_URL"
            echo "posted $name to $PUBLISH_URL"
          else
            mkdir -p "$OUTPUT_DIR"
            cp alloc/output.gif "$OUTPUT_DIR/$name"
            echo "published $OUTPUT_DIR/$name"
          fi
        EOT
        ]
      }
      env {
        PUBLISH_URL = "${NOMAD_META_publish_url}"
        OUTPUT_DIR  = "${NOMAD_META_output_dir}"
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
