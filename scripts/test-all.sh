#!/usr/bin/env bash
# The project's one test command (README "Run all tests"; .ci/run calls exactly this).
# Installs what the tests need on a fresh Debian machine, then runs formatting, lints,
# tests, docs, the no_std builds and the PC/SC interop tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# ---------------------------------------------------------------------------------------
step "toolchain components (free disk: $(df -h . | awk 'NR==2 {print $4}'))"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
if ! rustup target list --installed | grep -qx thumbv7em-none-eabi; then
  rustup target add thumbv7em-none-eabi
fi

# ---------------------------------------------------------------------------------------
step "system packages (Debian): PC/SC stack for the pcsc crate and the interop tests"
apt_need=()
command -v pkg-config >/dev/null 2>&1 || apt_need+=(pkg-config)
[ -e /usr/include/PCSC/winscard.h ] || apt_need+=(libpcsclite-dev)
command -v pcscd >/dev/null 2>&1 || apt_need+=(pcscd)
[ -n "$(ls /usr/lib/pcsc/drivers/serial/libifdvpcd.so* 2>/dev/null)" ] || apt_need+=(vsmartcard-vpcd)
command -v pcsc_scan >/dev/null 2>&1 || apt_need+=(pcsc-tools)
command -v opensc-tool >/dev/null 2>&1 || apt_need+=(opensc)
if [ "${#apt_need[@]}" -gt 0 ]; then
  echo "installing ${apt_need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -q >/dev/null
  timeout 900 apt-get install -y -q --no-install-recommends "${apt_need[@]}" >/dev/null
fi

step "Python venv (.venv) for the interop peers"
if ! .venv/bin/python -c 'import yubikit.securitydomain, ykman.pcsc, joserfc' >/dev/null 2>&1; then
  timeout 300 python3 -m venv .venv
  timeout 900 .venv/bin/pip install -q -r scripts/requirements.txt
fi

# Incremental-compilation caches only help repeated local builds; in CI they are pure disk.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi

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

step "PC/SC interop (pcscd + vpcd + opensc-tool + yubikit against mec vse serve)"
# `cargo test --workspace` above already built target/debug/mec for mec's CLI tests; reuse it
# instead of `cargo build -p mec`, whose different feature set would rebuild a second copy.
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
if [ ! -x "$target_dir/debug/mec" ]; then cargo build -q -p mec --locked; fi
export MEC_BIN="$target_dir/debug/mec" INTEROP_NO_INSTALL=1
./scripts/interop.sh

step "mec gp end to end over pcscd + vpcd (every verb, SCP02/SCP03/SCP11b, diversified cards)"
bash scripts/interop/gp.sh

step "mec purse end to end over pcscd + vpcd (install, personalize, load, purchase, tear recovery)"
bash scripts/interop/purse.sh

echo
echo "all checks passed"
