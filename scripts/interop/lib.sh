# shellcheck shell=bash
# Shared infrastructure of the PC/SC interop scripts (scripts/interop.sh,
# scripts/interop/gp.sh, scripts/interop/purse.sh). Source it after `set -euo pipefail`:
#
#   . "$ROOT/scripts/interop/lib.sh"
#   interop_init TAG TIMEOUT        log prefix "[TAG]" for log/die; TIMEOUT (seconds) bounds
#                                   every pcscd / `mec vse serve` this script starts.
#   log MSG... / die MSG...         "[TAG] MSG" on stdout / "[TAG] ERROR: MSG" on stderr + exit 1.
#   interop_find_vpcd               sets VPCD_LIB to vsmartcard's vpcd driver, or to "" when
#                                   it is not installed.
#   interop_mec_bin                 builds mec unless MEC_BIN is set; dies unless MEC_BIN is
#                                   an executable afterwards.
#   interop_setup_work PREFIX TAIL  WORK=$(mktemp -d /tmp/PREFIX.XXXXXX), empty PIDS, and the
#                                   EXIT trap: stop every pid in PIDS (TERM, then KILL), on
#                                   failure print the last TAIL lines of each $WORK/*.log,
#                                   remove WORK unless INTEROP_KEEP is set, keep the status.
#                                   INT / TERM exit 130 (through the EXIT trap).
#   interop_stop_pid PID            TERM, wait up to 5 s, then KILL (only if PID still runs).
#   interop_pcscd_mode              sets PCSCD_MODE=namespace (private mount namespace via
#                                   unshare) or direct (no system pcscd, root); otherwise
#                                   logs "SKIP: ..." and exits 0.
#   interop_free_ports N            prints a port P with P .. P+N-1 free on 127.0.0.1
#                                   (P a multiple of N), or nothing.
#   interop_reader_conf FILE READER HOST PORT
#                                   writes a vpcd reader.conf: FRIENDLYNAME READER,
#                                   DEVICENAME HOST:0xPORT, CHANNELID 0xPORT.
#   interop_start_pcscd CONF RUN LOG
#                                   starts `pcscd -f -a -c CONF` (output appended to LOG) in
#                                   PCSCD_MODE, with its socket directory RUN (namespace mode;
#                                   /run/pcscd otherwise); sets PCSCD_PID, adds it to PIDS,
#                                   exports PCSCLITE_CSOCK_NAME and waits for the socket.
#   interop_start_mec_serve LOG READY ARGS...
#                                   starts `$MEC_BIN vse serve ARGS...` (output in LOG); sets
#                                   MEC_PID (the `timeout` wrapper), adds it to PIDS, waits
#                                   until LOG has READY ("listening on" / "connected to")
#                                   for both slots.
#   interop_wait_cards KIND READER  waits until pcscd shows a card in both slots of READER;
#                                   KIND opensc (opensc-tool -l) or mec (mec gp readers).
#                                   Returns 1 (after printing the listing) on timeout.
#   interop_stop_round              stops PCSCD_PID, then MEC_PID, and reaps both.
#
# In namespace mode pcscd runs in its own mount namespace: a private /run with RUN bound on
# /run/pcscd (pcscd 1.9 hard-codes that directory) and the USB CCID driver bundle hidden, so
# a system pcscd and the host's readers are never touched. Every process is started in this
# shell (never in a command substitution), so its pid is ours to stop and to reap.

interop_init() {
  INTEROP_TAG="$1"
  INTEROP_TIMEOUT="$2"
}

log() { printf '[%s] %s\n' "$INTEROP_TAG" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$INTEROP_TAG" "$*" >&2; exit 1; }

interop_find_vpcd() {
  VPCD_LIB=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
  [ -e "$VPCD_LIB" ] ||
    VPCD_LIB="$(dpkg -L vsmartcard-vpcd 2>/dev/null | grep 'libifdvpcd\.so$' | head -n1 || true)"
}

interop_mec_bin() {
  if [ -z "${MEC_BIN:-}" ]; then
    log "building mec"
    timeout 1800 cargo build -q -p mec
    MEC_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/mec"
  fi
  [ -x "$MEC_BIN" ] || die "mec binary $MEC_BIN not found"
}

interop_stop_pid() {
  local pid="$1"
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

interop_cleanup() {
  local status=$?
  set +e
  for pid in "${PIDS[@]}"; do interop_stop_pid "$pid"; done
  wait 2>/dev/null
  if [ "$status" != 0 ]; then
    for f in "$WORK"/*.log; do
      [ -e "$f" ] && { echo "---- $f (tail)"; tail -n "$INTEROP_TAIL" -- "$f"; }
    done
  fi
  [ -n "${INTEROP_KEEP:-}" ] || rm -rf "$WORK"
  exit "$status"
}

interop_setup_work() {
  WORK="$(mktemp -d "/tmp/$1.XXXXXX")"
  INTEROP_TAIL="$2"
  PIDS=()
  PCSCD_PID=""
  MEC_PID=""
  trap interop_cleanup EXIT
  trap 'exit 130' INT TERM
}

interop_pcscd_mode() {
  PCSCD_MODE=""
  if unshare --mount --propagation private true 2>/dev/null; then
    PCSCD_MODE=namespace
  elif [ ! -e /run/pcscd/pcscd.comm ] && [ "$(id -u)" = 0 ]; then
    PCSCD_MODE=direct
  else
    log "SKIP: cannot run a private pcscd (no mount namespace rights and a system pcscd is running)"
    exit 0
  fi
}

interop_free_ports() {
  python3 - "$1" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    p = random.randrange(20000, 60000, n)
    socks = []
    try:
        for q in range(p, p + n):
            s = socket.socket(); s.bind(("127.0.0.1", q)); socks.append(s)
        print(p); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
EOF
}

interop_reader_conf() {
  local file="$1" reader="$2" host="$3" port="$4"
  mkdir -p "$(dirname "$file")"
  printf 'FRIENDLYNAME "%s"\nDEVICENAME   %s:0x%04X\nLIBPATH      %s\nCHANNELID    0x%04X\n' \
    "$reader" "$host" "$port" "$VPCD_LIB" "$port" > "$file"
}

interop_start_pcscd() {
  local conf="$1" run="$2" plog="$3"
  mkdir -p "$run" "$WORK/empty"
  rm -f "$run/pcscd.comm" "$run/pcscd.pid"
  if [ "$PCSCD_MODE" = namespace ]; then
    # shellcheck disable=SC2016  # the inner script expands its own positional parameters
    timeout --signal=TERM "$INTEROP_TIMEOUT" unshare --mount --propagation private sh -c '
      set -e
      mount -t tmpfs tmpfs /run
      mkdir -p /run/pcscd
      mount --bind "$1" /run/pcscd
      if [ -d "$2" ]; then mount --bind "$3" "$2"; fi
      exec pcscd -f -a -c "$4"
    ' sh "$run" /usr/lib/pcsc/drivers/ifd-ccid.bundle "$WORK/empty" "$conf" >> "$plog" 2>&1 &
    PCSCD_PID="$!"
    export PCSCLITE_CSOCK_NAME="$run/pcscd.comm"
  else
    timeout --signal=TERM "$INTEROP_TIMEOUT" pcscd -f -a -c "$conf" >> "$plog" 2>&1 &
    PCSCD_PID="$!"
    export PCSCLITE_CSOCK_NAME=/run/pcscd/pcscd.comm
  fi
  PIDS+=("$PCSCD_PID")
  for _ in $(seq 100); do [ -S "$PCSCLITE_CSOCK_NAME" ] && return 0; sleep 0.1; done
  die "pcscd did not create $PCSCLITE_CSOCK_NAME"
}

interop_start_mec_serve() {
  local mlog="$1" ready="$2"; shift 2
  : > "$mlog"
  timeout --signal=TERM "$INTEROP_TIMEOUT" "$MEC_BIN" vse serve "$@" > "$mlog" 2>&1 &
  MEC_PID="$!"
  PIDS+=("$MEC_PID")
  # Reverse mode: vpcd must find both listeners when pcscd starts. Default mode: both slots
  # must have connected to vpcd.
  for _ in $(seq 300); do
    [ "$(grep -c "$ready" "$mlog")" -ge 2 ] && return 0
    kill -0 "$MEC_PID" 2>/dev/null || die "mec vse serve exited: $(cat "$mlog")"
    sleep 0.1
  done
  die "mec vse serve did not report '$ready' for both slots"
}

# The number of slots of reader $2 with a card, listed the $1 way.
interop_count_cards() {
  if [ "$1" = opensc ]; then
    timeout 5 opensc-tool -l 2>/dev/null | grep -c "Yes.*$2" || true
  else
    timeout 5 "$MEC_BIN" gp readers 2>/dev/null | grep -c "card present" || true
  fi
}

interop_wait_cards() {
  local kind="$1" reader="$2"
  for _ in $(seq 150); do
    [ "$(interop_count_cards "$kind" "$reader")" = 2 ] && return 0
    sleep 0.2
  done
  if [ "$kind" = opensc ]; then timeout 5 opensc-tool -l || true; else timeout 5 "$MEC_BIN" gp readers || true; fi
  return 1
}

interop_stop_round() {
  interop_stop_pid "$PCSCD_PID"
  interop_stop_pid "$MEC_PID"
  wait "$PCSCD_PID" 2>/dev/null || true
  wait "$MEC_PID" 2>/dev/null || true
}
