# shellcheck shell=bash
# Sourced by scripts/run and scripts/test: makes sure the Python virtualenv with the
# local stand-ins for AWS (moto server, boto3) and the Lambda APIs (cargo-lambda), and
# Twilio's official library (which signs test webhooks) and schemathesis (which tests
# the API against its OpenAPI document), exists, installing Debian's
# python3-venv if needed. Sets VENV.

# 5.2.x answers GetBucketVersioning with the wrong XML root, which the Rust SDK refuses.
MOTO_VERSION=5.1.22
CARGO_LAMBDA_VERSION=1.9.2
TWILIO_VERSION=9.13.0
SCHEMATHESIS_VERSION=4.32.5
VENV=${TEMPOVOICE_VENV:-$HOME/.cache/tempovoice/venv}

# shellcheck source=debian-packages.sh
. "$(dirname "${BASH_SOURCE[0]}")/debian-packages.sh"

ensure_python_tools() {
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    ensure_debian_packages python3 python3-venv
  fi
  local wanted=()
  "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" >/dev/null 2>&1 ||
    wanted+=("moto[server]==$MOTO_VERSION")
  "$VENV/bin/pip" show cargo-lambda 2>/dev/null | grep -x "Version: $CARGO_LAMBDA_VERSION" >/dev/null ||
    wanted+=("cargo-lambda==$CARGO_LAMBDA_VERSION")
  "$VENV/bin/python" -c "import twilio, sys; sys.exit(twilio.__version__ != '$TWILIO_VERSION')" >/dev/null 2>&1 ||
    wanted+=("twilio==$TWILIO_VERSION")
  "$VENV/bin/pip" show schemathesis 2>/dev/null | grep -x "Version: $SCHEMATHESIS_VERSION" >/dev/null ||
    wanted+=("schemathesis==$SCHEMATHESIS_VERSION")
  [ "${#wanted[@]}" -gt 0 ] || return 0
  printf '\n==> installing %s into %s\n' "${wanted[*]}" "$VENV"
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${wanted[@]}"
}
