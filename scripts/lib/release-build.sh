# shellcheck shell=bash
# Sourced by scripts/run and scripts/run-agent: one release build command for both.
# The package selection is what cargo unifies features over, so both select the whole
# workspace and name only the binaries they need; each script's binaries are then
# fresh for the other, and neither rebuilds the dependencies the other built.
release_build() {
  cargo build --release --locked -q --workspace "$@"
}
