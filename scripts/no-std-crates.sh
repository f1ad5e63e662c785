#!/usr/bin/env bash
# The workspace crates that must build without std (DESIGN.md "Crates").
cd "$(dirname "$0")/.."
for crate in apdu-codec gp-scp epurse pos-sam; do
  [ -f "$crate/Cargo.toml" ] && echo "$crate"
done
exit 0
