# Sourced by scripts/run and scripts/test: makes sure the Python virtualenv with the
# local stand-ins for AWS (moto server, boto3) and the Lambda APIs (cargo-lambda), and
# Twilio's official library (which signs test webhooks), exists, installing Debian's
# python3-venv if needed. Sets VENV.

# 5.2.x answers GetBucketVersioning with the wrong XML root, which the Rust SDK refuses.
MOTO_VERSION=5.1.22
CARGO_LAMBDA_VERSION=1.9.2
TWILIO_VERSION=9.13.0
VENV=${TEMPOVOICE_VENV:-$HOME/.cache/tempovoice/venv}

ensure_python_tools() {
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    printf '\n==> installing python3-venv (Debian packages)\n'
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  if ! "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" >/dev/null 2>&1; then
    printf '\n==> installing moto %s into %s\n' "$MOTO_VERSION" "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "moto[server]==$MOTO_VERSION"
  fi
  if ! "$VENV/bin/pip" show cargo-lambda 2>/dev/null | grep -x "Version: $CARGO_LAMBDA_VERSION" >/dev/null; then
    printf '\n==> installing cargo-lambda %s into %s\n' "$CARGO_LAMBDA_VERSION" "$VENV"
    "$VENV/bin/pip" install -q "cargo-lambda==$CARGO_LAMBDA_VERSION"
  fi
  if ! "$VENV/bin/python" -c "import twilio, sys; sys.exit(twilio.__version__ != '$TWILIO_VERSION')" >/dev/null 2>&1; then
    printf '\n==> installing twilio %s into %s\n' "$TWILIO_VERSION" "$VENV"
    "$VENV/bin/pip" install -q "twilio==$TWILIO_VERSION"
  fi
}
