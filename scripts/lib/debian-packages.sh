# shellcheck shell=bash
# Sourced by scripts/test and scripts/run-agent: installs Debian packages that are
# missing, as root or through sudo, with one `apt-get update` per run.

APT_UPDATED=
ensure_debian_packages() {
  local missing=() pkg sudo=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  printf '\n==> installing %s (Debian packages)\n' "${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then
    "${sudo[@]}" apt-get update -qq
    APT_UPDATED=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}
