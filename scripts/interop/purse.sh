#!/usr/bin/env bash
# shellcheck disable=SC2015  # "check && pass || fail": pass only logs and cannot fail
# End-to-end tests of the e-purse (issue 6) over real PC/SC: a private pcscd with vsmartcard's
# vpcd driver in reverse mode, `mec vse serve` behind it, `mec gp` installing and
# personalizing the purse through the card manager (SCP03), and `mec purse` as the terminal.
#
#   scripts/interop/purse.sh       run every check, exit non-zero on failure
#   MEC_BIN=path ...               use this mec binary instead of building it
#   INTEROP_KEEP=1 ...             keep the work directory (logs)
#
# Same environment as scripts/interop.sh (which installs pcscd, vsmartcard-vpcd, opensc and
# libpcsclite-dev): this script only checks they are there. Like interop.sh and gp.sh it runs
# its OWN pcscd in a private mount namespace (or directly when no system pcscd runs), talks to
# it through PCSCLITE_CSOCK_NAME, and stops exactly the processes it started, by pid.
#
# Rounds (one card state directory across all of them; vpcd only creates reverse-mode readers
# whose card listens when pcscd starts, so each round starts the card, then pcscd):
#   1. install + personalize, balance, load, purchase, log, prove, refusals (status words and
#      exit codes).
#   2. `mec vse serve --lose-response 0`: the answer to DEBIT FOR PURCHASE (the first APDU of
#      the round that commits) is dropped after the commit and the card leaves; `mec purse`
#      reconnects, re-reads the balance, proves the purchase with GET TRANSACTION PROVE and
#      never debits twice.
#   3. The same for CREDIT FOR LOAD.
#   4. The ED and the PIN: ED load / purchase / unload with --pin (VERIFY in the same card
#      session), an ED purchase without the PIN (6982), an unload above the balance (9401),
#      wrong PINs (63Cx), CHANGE PIN, the issuer's RELOAD PIN, APPLICATION BLOCK (purchases
#      refused with 6985) and UNBLOCK.
#   5. `--lose-response 0`: the answer to DEBIT FOR UNLOAD is lost; `mec purse` reconnects,
#      VERIFYs the PIN again, proves the unload and never debits twice. Then the issuer locks
#      the purse for good (9303 afterwards).
#   6. The value-block tag and the e-ticket store (issue 6) next to a second purse instance
#      (the first is locked): the tag and the store installed with their INSTALL parameters
#      (`mec purse tag params`, `mec purse ticket params`), value moved from the purse to the
#      tag (`mec purse tag move`), shown, spent (`decrement`), refusals (9401, wrong key 9302,
#      no PIN), a ticket bought, listed and checked at the gate (a replayed answer refused).
#   7. `--lose-response 0`: the answer to MOVE TO TAG is lost after the purse committed; the
#      voucher is recovered with GET TRANSACTION PROVE type 09 and credited once.
#   8. `--lose-response 1`: the answer to CREDIT VOUCHER (the second committing APDU, after
#      MOVE TO TAG) is lost; the tag's voucher counter shows it was credited; never twice.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

# shellcheck source=scripts/interop/lib.sh
. "$ROOT/scripts/interop/lib.sh"
interop_init purse-e2e 900

PROFILE="$ROOT/virtual-se/profiles/default.toml"
READER="MEC Purse Virtual SE"
AID=A000000333010101

interop_find_vpcd
command -v pcscd >/dev/null 2>&1 || die "pcscd missing (apt-get install pcscd vsmartcard-vpcd libpcsclite-dev, or run scripts/interop.sh once)"
[ -n "$VPCD_LIB" ] && [ -e "$VPCD_LIB" ] || die "vpcd driver missing (apt-get install vsmartcard-vpcd)"

interop_mec_bin

interop_setup_work mec-purse-e2e 30
interop_pcscd_mode

ROUND=0
# start_pcscd: pcscd with the round's reader configuration, socket in $WORK/run.$ROUND.
start_pcscd() { interop_start_pcscd "$WORK/conf.$ROUND" "$WORK/run.$ROUND" "$WORK/pcscd.$ROUND.log"; }
# start_round [EXTRA SERVE ARGS...]: the card (state in $WORK/state), then a fresh pcscd.
start_round() {
  ROUND=$((ROUND + 1))
  local port
  port="$(interop_free_ports 2)"
  [ -n "$port" ] || die "no free port pair"
  interop_reader_conf "$WORK/conf.$ROUND/vpcd" "$READER" 127.0.0.1 "$port"
  interop_start_mec_serve "$WORK/mec.$ROUND.log" "listening on" --profile "$PROFILE" \
    --profile2 "$PROFILE" --state "$WORK/state" --listen "127.0.0.1:$port" --verbose "$@"
  start_pcscd
  interop_wait_cards mec "$READER" || die "round $ROUND: the cards did not appear in pcscd"
  log "round $ROUND on port $port${*:+ ($*)}"
}
stop_round() { interop_stop_round; }

FAILED=0
PASSED=0
pass() { PASSED=$((PASSED + 1)); log "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); log "FAIL $*"; }

# run TOOL ARGS...: mec gp|purse on slot 0; stdout in $OUT, stderr in $ERR, exit in $RC.
run() {
  local tool="$1"; shift
  RC=0
  OUT="$(timeout 90 "$MEC_BIN" "$tool" --reader "$READER 00 00" "$@" 2>"$WORK/err")" || RC=$?
  ERR="$(cat "$WORK/err")"
}
# run_lossy TOOL ARGS...: like run, for a command whose answer the card drops. vpcd (0.8)
# makes pcscd abort when a card drops its connection under it (see gp.sh / interop.sh), so
# while the command waits for the card to come back, a dead pcscd is restarted with the same
# configuration and socket path; `mec purse` then reconnects through it to the card, which
# kept listening.
run_lossy() {
  local tool="$1"; shift
  RC=0
  timeout 90 "$MEC_BIN" "$tool" --reader "$READER 00 00" "$@" >"$WORK/out" 2>"$WORK/err" &
  local pid="$!" restarts=0
  while kill -0 "$pid" 2>/dev/null; do
    if ! kill -0 "$PCSCD_PID" 2>/dev/null; then
      wait "$PCSCD_PID" 2>/dev/null || true
      restarts=$((restarts + 1))
      [ "$restarts" -le 3 ] || die "pcscd keeps stopping"
      log "pcscd stopped after the card left; restarting it ($restarts)"
      rm -f "$PCSCLITE_CSOCK_NAME"
      start_pcscd
    fi
    sleep 0.2
  done
  wait "$pid" || RC=$?
  # pcscd may still go down a moment later: give it 2 s and restart it if it did.
  sleep 2
  if ! kill -0 "$PCSCD_PID" 2>/dev/null; then
    wait "$PCSCD_PID" 2>/dev/null || true
    log "pcscd stopped after the card left; restarting it"
    rm -f "$PCSCLITE_CSOCK_NAME"
    start_pcscd
  fi
  OUT="$(cat "$WORK/out")"
  ERR="$(cat "$WORK/err")"
}
expect_lossy() {
  local name="$1" code="$2"; shift 2
  run_lossy "$@"
  if [ "$RC" = "$code" ]; then pass "$name"; else fail "$name: exit $RC, expected $code: $ERR"; fi
}
# field NAME: the value of a receipt / balance line in $OUT.
field() { printf '%s\n' "$OUT" | sed -n "s|^$1  *||p" | head -n1 | sed 's| *$||'; }
# expect NAME CODE TOOL ARGS...: the exit code must be CODE.
expect() {
  local name="$1" code="$2"; shift 2
  run "$@"
  if [ "$RC" = "$code" ]; then pass "$name"; else fail "$name: exit $RC, expected $code: $ERR"; fi
}
# expect_field NAME FIELD VALUE: after a run, the receipt line FIELD reads VALUE.
expect_field() {
  local got
  got="$(field "$2")"
  if [ "$got" = "$3" ]; then pass "$1: $2 $3"; else fail "$1: $2 is '$got', expected '$3'"; printf '%s\n' "$OUT" >&2; fi
}
# expect_err NAME TEXT: stderr of the last run contains TEXT.
expect_err() {
  if printf '%s' "$ERR" | grep -qF -- "$2"; then pass "$1"; else fail "$1: stderr lacks '$2': $ERR"; fi
}

# ---------------------------------------------------------------------------------------
# Round 1: install, personalize, use.
start_round
expect "gp install purse" 0 gp install --package F06D65635055 --applet F06D6563505501 --create "$AID"
DGIS="$("$MEC_BIN" purse perso-data)"
# shellcheck disable=SC2086
expect "gp store-data (personalization DGIs)" 0 gp store-data "$AID" --dgi $DGIS
expect "gp list shows the purse" 0 gp list
printf '%s\n' "$OUT" | grep -q "$AID" && pass "registry lists $AID" || fail "registry lacks $AID: $OUT"

expect "purse balance" 0 purse balance
expect_field "fresh purse" "EP balance" "0.00"
expect_field "issuer data" "Card ASN" "0000000012345678"

expect "purse load 100.00" 0 purse load --amount 100.00 --terminal-id 000000000042 --when 20261121071500
expect_field "load receipt" "Amount" "100.00"
expect_field "load receipt" "Balance before" "0.00"
expect_field "load receipt" "Balance after" "100.00"
expect_field "load receipt" "Online ATC" "0"
expect_field "load receipt" "Date/time" "2026-11-21 07:15:00"
LOAD_TAC="$(field TAC)"

expect "purse purchase 12.50" 0 purse purchase --amount 12.50 --terminal-id 000000000777 --serial 100 --when 20261121071600
expect_field "purchase receipt" "Balance before" "100.00"
expect_field "purchase receipt" "Balance after" "87.50"
expect_field "purchase receipt" "Offline ATC" "0"
expect_field "purchase receipt" "Terminal serial" "101"
PURCHASE_TAC="$(field TAC)"
printf '%s\n' "$OUT" | grep -q "MAC2 verified by the SAM" && pass "SAM verified MAC2" || fail "no MAC2 check: $OUT"

expect "purse log" 0 purse log
[ "$(printf '%s\n' "$OUT" | grep -c 'EP ')" = 2 ] && pass "log has 2 records" || fail "log: $OUT"
expect "purse prove purchase ATC 0" 0 purse prove --atc 0
printf '%s\n' "$OUT" | grep -q "TAC $PURCHASE_TAC" && pass "prove gives the purchase TAC" || fail "prove: $OUT"
expect "purse prove load ATC 0" 0 purse prove --atc 0 --type load
printf '%s\n' "$OUT" | grep -q "TAC $LOAD_TAC" && pass "prove gives the load TAC" || fail "prove: $OUT"

expect "purchase above the balance" 1 purse purchase --amount 87.51
expect_err "9401 message" "INITIALIZE FOR PURCHASE: card answered 9401 (insufficient balance)"
expect "load above the maximum" 1 purse load --amount 9912.51
expect_err "9501 message" "9501 (maximum balance exceeded)"
expect "prove unknown ATC" 1 purse prove --atc 7
expect_err "9406 message" "9406"
expect "wrong SAM key" 1 purse purchase --amount 1 --purchase-master-key 00112233445566778899AABBCCDDEEFF
expect_err "9302 message" "DEBIT FOR PURCHASE: card answered 9302 (MAC invalid)"
expect "wrong issuer key" 3 purse load --amount 1 --issuer-master-key 00112233445566778899AABBCCDDEEFF
expect "bad amount" 2 purse purchase --amount 1.234
expect "balance unchanged by refusals" 0 purse balance
expect_field "after refusals" "EP balance" "87.50"
stop_round

# Round 2: the answer to DEBIT FOR PURCHASE is lost after the commit.
start_round --lose-response 0
expect_lossy "purchase with a lost answer" 0 purse purchase --amount 7.25 --serial 200
expect_field "recovered purchase" "Balance after" "80.25"
printf '%s\n' "$OUT" | grep -q "recovered with GET TRANSACTION PROVE" && pass "purchase recovered via GET TRANSACTION PROVE" || fail "no recovery note: $OUT $ERR"
grep -q "response lost" "$WORK/mec.$ROUND.log" && pass "the server dropped the answer" || fail "the fault did not fire"
expect "balance after the lost answer" 0 purse balance
expect_field "debited exactly once" "EP balance" "80.25"
stop_round

# Round 3: the answer to CREDIT FOR LOAD is lost after the commit.
start_round --lose-response 0
expect_lossy "load with a lost answer" 0 purse load --amount 20.00
printf '%s\n' "$OUT" | grep -q "MAC2 and TAC proved" && pass "load recovered via GET TRANSACTION PROVE" || fail "no recovery note: $OUT $ERR"
expect "balance after the lost load answer" 0 purse balance
expect_field "credited exactly once" "EP balance" "100.25"
expect "log after recovery" 0 purse log
[ "$(printf '%s\n' "$OUT" | grep -c 'EP ')" = 4 ] && pass "log has each transaction once" || fail "log: $OUT"
stop_round

# Round 4: the ED, the PIN and the issuer's commands.
start_round
expect "ED purchase without the PIN" 1 purse --wallet ed purchase --amount 1
expect_err "6982 message" "INITIALIZE FOR PURCHASE: card answered 6982 (security status not satisfied)"
expect "ED load 60.00 with the PIN" 0 purse --wallet ed --pin 123456 load --amount 60.00 --when 20261121081000
expect_field "ED load receipt" "Wallet" "ED (electronic deposit)"
expect_field "ED load receipt" "Balance after" "60.00"
expect "ED purchase 10.00 with the PIN" 0 purse --wallet ed --pin 123456 purchase --amount 10.00 --serial 300
expect_field "ED purchase receipt" "Balance after" "50.00"
expect "unload above the ED balance" 1 purse --pin 123456 unload --amount 50.01
expect_err "9401 message (unload)" "INITIALIZE FOR UNLOAD: card answered 9401 (insufficient balance)"
expect "unload 15.00" 0 purse --pin 123456 unload --amount 15.00 --when 20261121081100
expect_field "unload receipt" "Balance after" "35.00"
expect_field "unload receipt" "Online ATC" "1"
UNLOAD_TAC="$(field TAC)"
expect "prove the unload" 0 purse prove --type unload --atc 1
printf '%s\n' "$OUT" | grep -q "TAC $UNLOAD_TAC" && pass "prove gives the unload TAC" || fail "prove: $OUT"
expect "both balances" 0 purse --pin 123456 balance
expect_field "EP untouched by the ED" "EP balance" "100.25"
expect_field "ED balance" "ED balance" "35.00"
expect "wrong PIN" 1 purse verify-pin --pin 000000
expect_err "63C2 message" "VERIFY PIN: card answered 63C2"
expect "tries left" 0 purse verify-pin
[ "$OUT" = "PIN tries left: 2" ] && pass "2 tries left" || fail "tries: $OUT"
expect "change PIN" 0 purse change-pin --old 123456 --new 2468
expect "old PIN refused" 1 purse verify-pin --pin 123456
expect "issuer reloads the PIN" 0 purse reload-pin --new 123456
expect "reloaded PIN accepted" 0 purse verify-pin --pin 123456
expect "issuer blocks the purse" 0 purse block
expect "purchase on a blocked purse" 1 purse purchase --amount 1.00
expect_err "6985 message" "card answered 6985 (conditions of use not satisfied): the issuer has blocked the application"
expect "issuer unblocks the purse" 0 purse unblock
expect "purchase after unblock" 0 purse purchase --amount 1.00 --serial 400
expect_field "purchase after unblock" "Balance after" "99.25"
stop_round

# Round 5: the answer to DEBIT FOR UNLOAD is lost after the commit; then the permanent lock.
start_round --lose-response 0
expect_lossy "unload with a lost answer" 0 purse --pin 123456 unload --amount 5.00
printf '%s\n' "$OUT" | grep -q "MAC2 and TAC proved" && pass "unload recovered via GET TRANSACTION PROVE" || fail "no recovery note: $OUT $ERR"
expect "ED balance after the lost unload answer" 0 purse --wallet ed --pin 123456 balance
expect_field "unloaded exactly once" "ED balance" "30.00"
expect "lock without confirmation" 2 purse lock-permanently
expect "issuer locks the purse for good" 0 purse lock-permanently --yes-really
expect "locked purse" 1 purse balance
expect_err "9303 message" "card answered 9303 (application permanently locked)"
stop_round

# Round 6: the value-block tag and the e-ticket store, next to a second purse instance.
AID2=A000000333010102
TAG=A000000647565401
STORE=A000000647544B01
TAG_UID=04527A9A3C1180
start_round
expect "gp install purse 2" 0 gp install --package F06D65635055 --applet F06D6563505501 --create "$AID2"
# shellcheck disable=SC2086
expect "gp store-data purse 2 (with the tag access DGI 0401)" 0 gp store-data "$AID2" --dgi $DGIS
printf '%s\n' $DGIS | grep -q '^0401' && pass "perso-data carries DGI 0401" || fail "no DGI 0401 in: $DGIS"
TAG_PARAMS="$("$MEC_BIN" purse tag --uid "$TAG_UID" params 2>/dev/null)"
expect "gp install the tag" 0 gp install --package F06D65635055 --applet F06D6563505503 --create "$TAG" --params "$TAG_PARAMS"
STORE_PARAMS="$("$MEC_BIN" purse ticket params 2>/dev/null)"
expect "gp install the ticket store" 0 gp install --package F06D65635055 --applet F06D6563505502 --create "$STORE" --params "$STORE_PARAMS"
expect "purse 2 load 50.00" 0 purse --aid "$AID2" load --amount 50.00
expect "tag move 7.50" 0 purse --aid "$AID2" --pin 123456 tag --uid "$TAG_UID" move --amount 7.50 --block 1 --when 20261121090000
expect_field "move receipt" "MOVE TO TAG" "APPROVED"
expect_field "move receipt" "EP balance after" "42.50"
expect_field "move receipt" "Voucher counter" "0 -> 1"
expect_field "move receipt" "Tag value after" "7.50"
expect "tag show" 0 purse tag --uid "$TAG_UID" show
printf '%s\n' "$OUT" | grep -Eq '^ +1 +0 +7\.50 +1 ' && pass "tag block 1 holds 7.50, voucher counter 1" || fail "tag show: $OUT"
printf '%s\n' "$OUT" | grep -q INVALID && fail "a value block is invalid: $OUT" || pass "every value block valid"
expect "tag decrement 2.40" 0 purse tag --uid "$TAG_UID" decrement --amount 2.40 --block 1
expect_field "decrement receipt" "Value after" "5.10"
expect "tag decrement above the value" 1 purse tag --uid "$TAG_UID" decrement --amount 5.11 --block 1
expect_err "9401 message (tag)" "DECREMENT block 1: card answered 9401 (insufficient balance)"
expect "tag show with a wrong master key" 1 purse tag --uid "$TAG_UID" --tag-master-key 00112233445566778899AABBCCDDEEFE show --block 1
expect_err "9302 message (tag)" "wrong key"
expect "tag move without the PIN" 2 purse --aid "$AID2" tag --uid "$TAG_UID" move --amount 1
expect "tag move above the EP balance" 1 purse --aid "$AID2" --pin 123456 tag --uid "$TAG_UID" move --amount 42.51
expect_err "9401 message (move)" "MOVE TO TAG: card answered 9401 (insufficient balance)"
expect "ticket buy 25.00" 0 purse --aid "$AID2" ticket buy --amount 25.00 --serial 500 --id TKT00001 --event CONCERT1 --from 20261101 --to 20261130
expect_field "ticket purchase" "Balance after" "17.50"
printf '%s\n' "$OUT" | grep -q "STORE TICKET 9000: ticket TKT00001" && pass "ticket delivered" || fail "no delivery: $OUT"
expect "ticket list" 0 purse ticket list
expect_field "ticket list" "Tickets" "1"
expect "gate read" 0 purse ticket gate --id TKT00001 --date 20261121
expect_field "gate" "GATE" "ACCEPT"
GATE_ANSWER="$(field Answer)"
expect "replayed gate answer" 3 purse ticket gate --id TKT00001 --date 20261121 --replay-answer "$GATE_ANSWER"
expect_err "replay refused" "REFUSED"
expect "gate read outside the dates" 1 purse ticket gate --id TKT00001 --date 20261201
expect_err "6985 message (gate)" "6985"
stop_round

# Round 7: the answer to MOVE TO TAG is lost after the purse committed.
start_round --lose-response 0
expect_lossy "tag move with a lost MOVE answer" 0 purse --aid "$AID2" --pin 123456 tag --uid "$TAG_UID" move --amount 2.50 --block 1
printf '%s\n' "$OUT" | grep -q "voucher recovered with GET TRANSACTION PROVE" && pass "voucher recovered via GET TRANSACTION PROVE" || fail "no recovery note: $OUT $ERR"
expect_field "moved once" "Tag value after" "7.60"
expect "purse 2 balance after the lost MOVE answer" 0 purse --aid "$AID2" balance
expect_field "debited exactly once (move)" "EP balance" "15.00"
stop_round

# Round 8: the answer to CREDIT VOUCHER is lost after the tag committed.
start_round --lose-response 1
expect_lossy "tag move with a lost CREDIT answer" 0 purse --aid "$AID2" --pin 123456 tag --uid "$TAG_UID" move --amount 1.00 --block 1
printf '%s\n' "$OUT" | grep -q "voucher counter had advanced" && pass "credit settled by the voucher counter" || fail "no recovery note: $OUT $ERR"
expect "tag show after the lost CREDIT answer" 0 purse tag --uid "$TAG_UID" show --block 1
printf '%s\n' "$OUT" | grep -Eq '^ +1 +0 +8\.60 +3 ' && pass "credited exactly once (8.60, counter 3)" || fail "tag show: $OUT"
expect "purse 2 balance after the lost CREDIT answer" 0 purse --aid "$AID2" balance
expect_field "debited exactly once (credit)" "EP balance" "14.00"
expect "purse 2 log" 0 purse --aid "$AID2" log
[ "$(printf '%s\n' "$OUT" | grep -c 'EP to tag')" = 3 ] && pass "3 moves logged, each once" || fail "log: $OUT"
stop_round

log "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
