#!/usr/bin/env bash
# shellcheck disable=SC2015  # "check && pass || fail": pass only logs and cannot fail
# PC/SC interoperability tests of the virtual SE (issue 4): real pcscd + vsmartcard's vpcd
# driver + opensc-tool + yubikit (yubikey-manager) against `mec vse serve`.
#
#   scripts/interop.sh            install what is missing, run every test, exit non-zero on failure
#   INTEROP_NO_INSTALL=1 ...      never install (fail if something is missing)
#   MEC_BIN=path ...              use this mec binary instead of building it
#
# What it does:
#   1. Installs the Debian packages pcscd vsmartcard-vpcd pcsc-tools opensc libpcsclite-dev
#      when missing (apt-get, needs root), and a venv .venv with yubikey-manager from PyPI.
#   2. Starts its OWN pcscd in the foreground (`pcscd -f -a -c DIR`) with a private reader
#      configuration: vpcd in reverse mode, `DEVICENAME 127.0.0.1:0xPORT`, so vpcd connects to
#      the virtual SE on loopback (slot 0 on PORT, slot 1 on PORT+1). pcscd 1.9 hard-codes its
#      socket directory /run/pcscd, so the private pcscd runs in its own mount namespace
#      (`unshare --mount`) with a private directory bound over /run/pcscd and the USB CCID
#      driver hidden; clients reach it through PCSCLITE_CSOCK_NAME. A system pcscd (if any)
#      and the host's USB readers are never touched. Without unshare rights the script runs
#      pcscd directly only if no system pcscd is running, and otherwise skips (exit 0, SKIP).
#   3. Starts `mec vse serve --listen 127.0.0.1:PORT` (default profile on slot 0, the SCP11b
#      profile on slot 1, state in a temporary directory).
#   4. Runs opensc-tool (ATR, plain APDUs and their status words) and yubikit (SCP03 level 33,
#      SCP11b, secured GET DATA, PUT KEY then SIGKILL + restart from --state), then repeats a
#      few checks in vpcd's default mode (vpcd listens, `mec vse serve --connect`).
#   5. Stops exactly the processes it started (by pid; TERM, then KILL) on any exit.
# Every step has a timeout.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

# shellcheck source=scripts/interop/lib.sh
. "$ROOT/scripts/interop/lib.sh"
interop_init interop 1800

interop_find_vpcd
PROFILE0="$ROOT/virtual-se/profiles/default.toml"
PROFILE1="$ROOT/virtual-se/profiles/scp11b.toml"
READER="MEC Virtual SE"

# ---------------------------------------------------------------------------------------
# 1. Dependencies
need_apt=()
command -v pcscd >/dev/null 2>&1 || need_apt+=(pcscd)
[ -n "$VPCD_LIB" ] || need_apt+=(vsmartcard-vpcd)
command -v pcsc_scan >/dev/null 2>&1 || need_apt+=(pcsc-tools)
command -v opensc-tool >/dev/null 2>&1 || need_apt+=(opensc)
[ -e /usr/include/PCSC/winscard.h ] || need_apt+=(libpcsclite-dev)
command -v unshare >/dev/null 2>&1 || need_apt+=(util-linux)
command -v pgrep >/dev/null 2>&1 || need_apt+=(procps)
# Debian's python3 creates venvs only with python3-venv (ensurepip).
if ! "$ROOT/.venv/bin/python" -c 'import yubikit' >/dev/null 2>&1; then
  command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  [ -z "${INTEROP_NO_INSTALL:-}" ] || die "missing packages: ${need_apt[*]}"
  [ "$(id -u)" = 0 ] || die "missing packages ${need_apt[*]} and not root: apt-get install them first"
  log "installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -q >/dev/null
  timeout 900 apt-get install -y -q --no-install-recommends \
    pcscd vsmartcard-vpcd pcsc-tools opensc libpcsclite-dev "${need_apt[@]}" >/dev/null
fi
interop_find_vpcd
[ -n "$VPCD_LIB" ] && [ -e "$VPCD_LIB" ] || die "vpcd driver not found"

VENV="$ROOT/.venv"
if ! "$VENV/bin/python" -c 'import yubikit.securitydomain, ykman.pcsc' >/dev/null 2>&1; then
  [ -z "${INTEROP_NO_INSTALL:-}" ] || die "venv $VENV lacks yubikey-manager"
  log "creating $VENV with yubikey-manager"
  timeout 300 python3 -m venv "$VENV"
  timeout 900 "$VENV/bin/pip" install -q yubikey-manager
fi
log "yubikey-manager $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("yubikey-manager"))')"

interop_mec_bin

# ---------------------------------------------------------------------------------------
# Process bookkeeping: only what we start, by pid (lib.sh).
interop_setup_work mec-interop 40

# Four free consecutive ports: slots 0 and 1 in reverse mode (PORT, PORT+1), then in vpcd's
# default mode (PORT+2, PORT+3).
PORT="$(interop_free_ports 4)"
[ -n "$PORT" ] || die "no free ports"
log "virtual SE on 127.0.0.1:$PORT and :$((PORT + 1)), work dir $WORK"

# ---------------------------------------------------------------------------------------
# 2. Private pcscd
# vsmartcard vpcd in reverse mode: it connects to the virtual SE at 127.0.0.1:PORT (slot 0)
# and PORT+1 (slot 1).
interop_reader_conf "$WORK/reader.conf.d/vpcd" "$READER" 127.0.0.1 "$PORT"
interop_pcscd_mode

start_pcscd() { interop_start_pcscd "${1:-$WORK/reader.conf.d}" "$WORK/run" "$WORK/pcscd.log"; }

MEC_RUNS=0
# start_mec [--listen|--connect ADDRESS READY]: the card, state in $WORK/state.
start_mec() {
  local endpoint="${1:---listen}" address="${2:-127.0.0.1:$PORT}" ready="${3:-listening on}"
  MEC_RUNS=$((MEC_RUNS + 1))
  interop_start_mec_serve "$WORK/mec.$MEC_RUNS.log" "$ready" --profile "$PROFILE0" \
    --profile2 "$PROFILE1" --state "$WORK/state" "$endpoint" "$address" -v
}

# Wait until pcscd shows a card in both slots.
wait_cards() { interop_wait_cards opensc "$READER" || die "the virtual SE did not appear in pcscd"; }

start_mec
start_pcscd
wait_cards
log "pcscd sees both slots"

FAILED=0
pass() { log "PASS $*"; }
fail() { log "FAIL $*"; FAILED=$((FAILED + 1)); }

# Send APDUs with opensc-tool to reader $1 and check the last status word is $2.
opensc_sw() {
  local reader="$1" want="$2"; shift 2
  local args=() out
  for apdu in "$@"; do args+=(-s "$apdu"); done
  out="$(timeout 20 opensc-tool -r "$reader" "${args[@]}" 2>&1)" || true
  local got
  got="$(printf '%s\n' "$out" | sed -n 's/.*SW1=0x\([0-9A-Fa-f][0-9A-Fa-f]\), SW2=0x\([0-9A-Fa-f][0-9A-Fa-f]\).*/\1\2/p' |
    tail -n1 | tr 'a-f' 'A-F')"
  if [ "$got" = "$want" ]; then return 0; fi
  printf '%s\n' "$out" >&2
  echo "expected SW $want, got ${got:-none}" >&2
  return 1
}

# ---------------------------------------------------------------------------------------
# 4a. opensc-tool: ATR and plain APDUs
ATR_WANT="$(sed -n 's/^atr *= *"\([0-9A-Fa-f]*\)".*/\1/p' "$PROFILE0" | tr 'a-f' 'A-F')"
ATR_GOT="$(timeout 20 opensc-tool -r 0 -a 2>/dev/null | tr -d ': \r' | tr 'a-f' 'A-F' | tail -n1)"
if [ -n "$ATR_WANT" ] && [ "$ATR_GOT" = "$ATR_WANT" ]; then pass "opensc ATR $ATR_GOT"; else fail "opensc ATR: got '$ATR_GOT', profile says '$ATR_WANT'"; fi

ISD=A000000151000000
opensc_sw 0 9000 "00:A4:04:00:08:$ISD:00" && pass "opensc SELECT ISD -> 9000" || fail "opensc SELECT ISD"
opensc_sw 0 9000 "00:A4:04:00:08:$ISD" "80:CA:9F:7F:00" && pass "opensc GET DATA CPLC -> 9000" || fail "opensc GET DATA CPLC"
opensc_sw 0 6D00 "00:A4:04:00:08:$ISD" "80:FF:00:00" && pass "opensc unknown INS -> 6D00" || fail "opensc unknown INS"
opensc_sw 0 6E00 "00:A4:04:00:08:$ISD" "A0:CA:9F:7F:00" && pass "opensc unknown CLA -> 6E00" || fail "opensc unknown CLA"
opensc_sw 0 6A82 "00:A4:04:00:05:A0:00:00:00:99" && pass "opensc SELECT unknown AID -> 6A82" || fail "opensc SELECT unknown AID"
opensc_sw 1 9000 "00:A4:04:00:08:$ISD:00" && pass "opensc slot 1 SELECT ISD -> 9000" || fail "opensc slot 1 SELECT ISD"

# 4b. yubikit secure channels
PY="$VENV/bin/python"
YK="$ROOT/scripts/interop/yubikit_scp.py"
run_yk() {
  local out status=0
  out="$(timeout 120 "$PY" "$YK" "$@" 2>"$WORK/yubikit.err.log")" || status=$?
  printf '%s\n' "$out" | while IFS= read -r line; do log "yubikit $line"; done
  FAILED=$((FAILED + $(printf '%s\n' "$out" | grep -c '^FAIL' || true)))
  if [ "$status" != 0 ] && ! printf '%s\n' "$out" | grep -q '^FAIL'; then
    fail "yubikit exited with $status"; cat "$WORK/yubikit.err.log" >&2
  fi
}
run_yk --reader "$READER 00 00" --kvn FF scp03 scp03-short scp03-wrong-key
run_yk --reader "$READER 00 01" --kvn FF --scp11-kvn 01 scp03 scp11b scp11b-short key-information

# 4c. Persistence: PUT KEY over SCP03, SIGKILL the server (no clean shutdown), restart from
# the same --state directory, authenticate with the new key set.
run_yk --reader "$READER 00 00" --kvn FF --new-kvn 30 put-key
# vpcd (vsmartcard 0.8) only creates reverse-mode readers whose card is listening when pcscd
# starts, and a card that disappears under a running pcscd makes its driver leak sockets until
# pcscd aborts (FD_SETSIZE); so pcscd is stopped first and restarted after the card.
interop_stop_pid "$PCSCD_PID"
# MEC_PID is the `timeout` wrapper; SIGKILL its one child, the mec process itself.
MEC_CHILD="$(pgrep -P "$MEC_PID" | head -n1 || true)"
[ -n "$MEC_CHILD" ] && kill -KILL "$MEC_CHILD" 2>/dev/null || true
wait "$MEC_PID" 2>/dev/null || true
start_mec
start_pcscd
wait_cards
run_yk --reader "$READER 00 00" --new-kvn 30 new-keys

# 4d. Clean shutdown on SIGTERM (what Ctrl-C does): the server exits 0 by itself.
kill -TERM "$MEC_PID"
status=0
for _ in $(seq 100); do kill -0 "$MEC_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$MEC_PID" 2>/dev/null; then fail "mec did not stop on SIGTERM within 10 s"; else
  wait "$MEC_PID" 2>/dev/null || status=$?
  [ "$status" = 0 ] && pass "mec stops cleanly on SIGTERM" || fail "mec exited with $status on SIGTERM"
fi

# 4e. vpcd's default mode: vpcd listens (DEVICENAME /dev/null:PORT+2; vpcd binds all
# interfaces, as Debian's own /etc/reader.conf.d/vpcd does on 35963) and
# `mec vse serve --connect` connects to it.
P2=$((PORT + 2))
interop_reader_conf "$WORK/reader.conf.d.default/vpcd" "$READER" /dev/null "$P2"
interop_stop_pid "$PCSCD_PID"
start_pcscd "$WORK/reader.conf.d.default"
start_mec --connect "127.0.0.1:$P2" "connected to"
wait_cards
opensc_sw 0 9000 "00:A4:04:00:08:$ISD" "80:CA:9F:7F:00" && pass "connect mode: opensc GET DATA CPLC -> 9000" || fail "connect mode: opensc GET DATA CPLC"
run_yk --reader "$READER 00 01" --kvn FF --scp11-kvn 01 scp03 scp11b
interop_stop_pid "$MEC_PID"
interop_stop_pid "$PCSCD_PID"

if [ "$FAILED" -gt 0 ]; then
  log "$FAILED interop check(s) failed"
  exit 1
fi
log "all interop checks passed"
