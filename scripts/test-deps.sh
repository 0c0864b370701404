#!/usr/bin/env bash
# test-deps.sh: install the system packages the test suite needs, only the
# ones that are missing. Idempotent; safe to run on every CI job.
#
# Target: Debian 12, run as root (or via sudo), no TTY needed.
#   ffmpeg, ffprobe   apt package ffmpeg   (tests/transcode_script.rs)
#   curl              apt package curl     (transcode.sh downloads http inputs)
#   python3           apt package python3  (test HTTP server: python3 -m http.server)
#   python3 `nomad`   PyPI python-nomad    (Nomad API client compatibility tests)
#   promtool          apt package prometheus (tests/metrics.rs: check metrics and rules)
#   ZooKeeper + JRE   apt package zookeeper (tests/mesos_zookeeper.rs starts a throwaway
#                     server: java -cp /usr/share/java/zookeeper.jar ...)
#   ShellCheck        apt package shellcheck (tests/deploy.rs: every shell script)
#   vagrant           apt package vagrant    (tests/deploy.rs: vagrant validate)
#   systemd-analyze   apt package systemd    (tests/deploy.rs: verify the units)
#   jq                apt package jq         (tests/deploy.rs: the queue-metrics script)
#   PostgreSQL        apt package postgresql (tests/postgres.rs starts a throwaway cluster
#                     with initdb/postgres from /usr/lib/postgresql/<version>/bin, as
#                     `nobody` when the tests run as root)
#   chromium +        apt packages chromium, chromium-driver (tests/ui.rs drives a headless
#   chromedriver      browser over WebDriver; the test starts chromedriver itself)
#
# Not installed here: Terraform and its AWS provider, which are not Debian packages.
# tests/deploy.rs runs `terraform validate` offline against a provider mirror in
# /opt/tf-plugins and fails, saying so, when either is missing (see the end of this file).
#
# `apt-get update` runs only when something has to be installed with apt.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "test-deps.sh: need root (or sudo) to install packages" >&2
        exit 1
    fi
fi

have() { command -v "$1" >/dev/null 2>&1; }

apt_pkgs=()
have ffmpeg && have ffprobe || apt_pkgs+=(ffmpeg)
have curl || apt_pkgs+=(curl)
have python3 || apt_pkgs+=(python3)
have promtool || apt_pkgs+=(prometheus)
{ [ -f /usr/share/java/zookeeper.jar ] && have java; } || apt_pkgs+=(zookeeper)
have shellcheck || apt_pkgs+=(shellcheck)
have vagrant || apt_pkgs+=(vagrant)
have systemd-analyze || apt_pkgs+=(systemd)
have jq || apt_pkgs+=(jq)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_pkgs+=(postgresql)
have chromium || apt_pkgs+=(chromium)
have chromedriver || apt_pkgs+=(chromium-driver)

python_has_pip() { python3 -m pip --version >/dev/null 2>&1; }
python_has_nomad() { python3 -c 'import nomad' >/dev/null 2>&1; }

need_nomad=0
if ! have python3 || ! python_has_nomad; then
    need_nomad=1
    # pip for the system python comes from apt; a pyenv/venv python has its own.
    if ! have python3 || ! python_has_pip; then
        apt_pkgs+=(python3-pip)
    fi
fi

if [ ${#apt_pkgs[@]} -gt 0 ]; then
    echo "Installing with apt: ${apt_pkgs[*]}"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
    # The downloaded .deb files are not needed once installed; the build needs the disk.
    $SUDO apt-get clean
fi

if [ "$need_nomad" -eq 1 ] && ! python_has_nomad; then
    echo "Installing with pip: python-nomad (python3 module nomad)"
    pip_args=(install --quiet --disable-pip-version-check python-nomad)
    # Debian's own python3 is "externally managed" (PEP 668): pip refuses
    # to install into it unless told to.
    if ! $SUDO python3 -m pip "${pip_args[@]}" 2>/dev/null; then
        $SUDO python3 -m pip "${pip_args[@]}" --break-system-packages
    fi
    python_has_nomad || {
        echo "test-deps.sh: python-nomad installed but 'import nomad' still fails" >&2
        exit 1
    }
fi

echo "test deps OK: $(ffmpeg -version | head -n1)"
echo "test deps OK: $(promtool --version 2>&1 | head -n1)"
echo "test deps OK: ZooKeeper jar /usr/share/java/zookeeper.jar, $(java -version 2>&1 | head -n1)"
echo "test deps OK: python3 module nomad $(python3 -c 'import nomad, importlib.metadata as m; print(m.version("python-nomad"))' 2>/dev/null || echo present)"
echo "test deps OK: $(shellcheck --version | sed -n 2p), $(vagrant --version), $(systemd-analyze --version | head -n1)"
if have terraform && [ -d /opt/tf-plugins/registry.terraform.io/hashicorp/aws ]; then
    echo "test deps OK: $(terraform version 2>/dev/null | head -n1), AWS provider mirror in /opt/tf-plugins"
else
    echo "test deps MISSING: terraform and/or its provider mirror /opt/tf-plugins; tests/deploy.rs will fail." >&2
    echo "  install Terraform (https://developer.hashicorp.com/terraform/install), then once, with registry access:" >&2
    echo "  (cd deploy/terraform/aws && terraform providers mirror /opt/tf-plugins)" >&2
fi
