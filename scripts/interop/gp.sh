#!/usr/bin/env bash
# shellcheck disable=SC2015  # "check && pass || fail": pass only logs and cannot fail
# End-to-end tests of `mec gp` (issue 5) over real PC/SC: a private pcscd with vsmartcard's
# vpcd driver in reverse mode, `mec vse serve` behind it, and `mec gp` as a PC/SC client.
#
#   scripts/interop/gp.sh          run every check, exit non-zero on failure
#   MEC_BIN=path ...               use this mec binary instead of building it
#   INTEROP_KEEP=1 ...             keep the work directory (logs, traces)
#
#   INTEROP_NO_INSTALL=1 ...       never install (fail if something is missing)
#
# Installs pcscd, vsmartcard-vpcd and libpcsclite-dev with apt-get when missing (root), like
# scripts/interop.sh, and needs python3 (for a free port pair and the test CAP file). Like
# interop.sh it runs its OWN pcscd in a private mount namespace (or directly when no system
# pcscd runs), talks to it through PCSCLITE_CSOCK_NAME, and stops exactly the processes it
# started, by pid. The last line is "N passed, M failed"; the exit status is 0 only when
# every check passed.
#
# vpcd only creates reverse-mode readers whose card is listening when pcscd starts, so each
# pair of card profiles is one "round": start `mec vse serve` (slot 0 and slot 1), start
# pcscd, run the checks, stop pcscd, stop the card. Rounds:
#   1. default (SCP03 S8 i=70)       + scp11b (SCP03 + SCP11b; chain checked with --ca/--sd-key)
#   2. scp03-s16 (S16, AES-256)      + scp02-i55 (SCP02)
#   3. diversified-emv (SCP02)       + diversified-visa2 (SCP02)
#   4. diversified-kdf3 (SCP03)      + kaoh-scp03 (the kaoh/globalplatform vector card), twice:
#      the two runs' traces must be identical, and match the published vector.
#   5. kaoh-scp02 (SCP02 i=15)       + samsung-scp03 (SCP03 S8 level 33): TEST ONLY profiles
#      with a fixed card challenge; traces match vectors/scp02.toml and vectors/scp03.toml.
#   6. extended-length (ATR announces extended Lc/Le, 7F66: 2048-byte commands)
#                                    + short-only (ATR: no extended Lc/Le; extended APDUs 6700):
#      a 60,000-byte load file in extended LOAD blocks through pcscd and vpcd; --apdu
#      extended refused for the short-only card, which still loads with short APDUs.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

# shellcheck source=scripts/interop/lib.sh
. "$ROOT/scripts/interop/lib.sh"
interop_init gp-e2e 900

PROFILES="$ROOT/virtual-se/profiles"
KAOH="$ROOT/mec/tests/data/gp/kaoh-scp03.toml"
READER="MEC GP Virtual SE"
K40=404142434445464748494A4B4C4D4E4F
K40_256=404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F

interop_find_vpcd
need_apt=()
command -v pcscd >/dev/null 2>&1 || need_apt+=(pcscd)
[ -n "$VPCD_LIB" ] || need_apt+=(vsmartcard-vpcd)
[ -e /usr/include/PCSC/winscard.h ] || need_apt+=(libpcsclite-dev)
if [ "${#need_apt[@]}" -gt 0 ]; then
  [ -z "${INTEROP_NO_INSTALL:-}" ] || die "missing packages: ${need_apt[*]}"
  [ "$(id -u)" = 0 ] || die "missing packages ${need_apt[*]} and not root: apt-get install them first"
  log "installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -q >/dev/null
  timeout 900 apt-get install -y -q --no-install-recommends pcscd vsmartcard-vpcd libpcsclite-dev >/dev/null
fi
interop_find_vpcd
command -v pcscd >/dev/null 2>&1 || die "pcscd missing"
[ -n "$VPCD_LIB" ] && [ -e "$VPCD_LIB" ] || die "vpcd driver missing (apt-get install vsmartcard-vpcd)"

interop_mec_bin

interop_setup_work mec-gp-e2e 30
interop_pcscd_mode

ROUND=0
# start_round PROFILE0 PROFILE1: a fresh card (memory state, fixed seed) and a fresh pcscd.
start_round() {
  ROUND=$((ROUND + 1))
  local port
  port="$(interop_free_ports 2)"
  [ -n "$port" ] || die "no free port pair"
  interop_reader_conf "$WORK/conf.$ROUND/vpcd" "$READER" 127.0.0.1 "$port"
  interop_start_mec_serve "$WORK/mec.$ROUND.log" "listening on" --profile "$1" --profile2 "$2" \
    --seed 00000000000000000000000000000000000000000000000000000000000000AB \
    --listen "127.0.0.1:$port"
  interop_start_pcscd "$WORK/conf.$ROUND" "$WORK/run.$ROUND" "$WORK/pcscd.$ROUND.log"
  interop_wait_cards mec "$READER" || die "round $ROUND: the two cards did not appear in pcscd"
  log "round $ROUND: $(basename "$1") + $(basename "$2") on port $port"
}
stop_round() { interop_stop_round; }

FAILED=0
PASSED=0
pass() { PASSED=$((PASSED + 1)); log "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); log "FAIL $*"; }

# gp SLOT ARGS...: run mec gp on reader slot 0 or 1; stdout in $OUT, stderr in $ERR, exit in $RC.
gp() {
  local slot="$1"; shift
  RC=0
  OUT="$(timeout 60 "$MEC_BIN" gp --reader "$READER 00 0$slot" "$@" 2>"$WORK/err")" || RC=$?
  ERR="$(cat "$WORK/err")"
}
# ok NAME SLOT ARGS...: expect exit 0.
ok() {
  local name="$1"; shift
  gp "$@"
  if [ "$RC" = 0 ]; then pass "$name"; else fail "$name (exit $RC): $ERR"; fi
}
# expect_rc NAME CODE SLOT ARGS...: expect this exit code.
expect_rc() {
  local name="$1" code="$2"; shift 2
  gp "$@"
  if [ "$RC" = "$code" ]; then pass "$name"; else fail "$name: exit $RC, expected $code: $ERR"; fi
}
has() { # has NAME TEXT NEEDLE
  if printf '%s' "$2" | grep -qF -- "$3"; then pass "$1"; else fail "$1: '$3' not in: $2"; fi
}
wire() { printf '%s\n' "$1" | grep -E '^(C|R): '; }

# A small CAP file (ZIP of components) for a package that is not on the card.
python3 - "$WORK/hello.cap" <<'EOF'
import struct, sys, zipfile
pkg = bytes.fromhex("F06D6567700A")
applet = bytes.fromhex("F06D6567700A01")
def comp(tag, body): return bytes([tag]) + struct.pack(">H", len(body)) + body
header = comp(1, bytes.fromhex("DECAFFED") + bytes([2, 2, 4, 0, 1, len(pkg)]) + pkg)
app = comp(3, bytes([1, len(applet)]) + applet + b"\x00\x10")
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
    for name, data in [("Header", header), ("Directory", comp(2, b"\0\0")), ("Applet", app),
                       ("Import", comp(4, b"\0")), ("Class", comp(6, b"\0")), ("Method", comp(7, b"\1\2")),
                       ("StaticField", comp(8, b"\0")), ("ConstantPool", comp(5, b"\0")),
                       ("RefLocation", comp(9, b"\0"))]:
        z.writestr("com/example/hello/javacard/%s.cap" % name, data)
EOF

# ---------------------------------------------------------------------------------------
start_round "$PROFILES/default.toml" "$PROFILES/scp11b.toml"
gp 0 readers
has "readers lists the virtual SE with its ATR" "$OUT" "ATR 3BF81300008131FE456D65637653453031EA"
ok "info (SCP03 S8)" 0 info
has "info decodes CPLC" "$OUT" "IC serial number"
has "info shows the card life cycle" "$OUT" "Card life cycle: 0F (SECURED)"
ok "info --json" 0 --json info
has "info --json key table" "$OUT" '"keys"'
for level in mac mac+enc mac+enc+rmac all; do
  ok "list SCP03 S8 --security $level" 0 --security "$level" --trace list
  has "list SCP03 S8 $level shows the ISD" "$OUT" "ISD: A000000151000000"
done
ok "list --json" 0 --json list
ok "install CAP --load-only" 0 install "$WORK/hello.cap" --load-only
has "install loaded the CAP package" "$OUT" "loaded F06D6567700A"
ok "install instance of the store package" 0 install --package F06D65635354 --applet F06D6563535401 --create F06D6563535402 --privs card-reset
ok "store-data (DGI)" 0 store-data F06D6563535402 --dgi 0101024142
ok "apdu reads back the personalized object" 0 apdu 00A4040007F06D6563535402 00CA010100
has "apdu answer" "$OUT" "0101024142 9000"
ok "store-data (TLV)" 0 store-data F06D6563535402 --tlv 5F2003414243
ok "lock" 0 lock F06D6563535402
gp 0 list; has "list shows LOCKED" "$OUT" "F06D6563535402 87 (LOCKED)"
ok "unlock" 0 unlock F06D6563535402
ok "set-status" 0 set-status F06D6563535402 0F
expect_rc "delete a load file with dependents: card refuses (exit 1)" 1 0 delete F06D65635354
ok "delete application" 0 delete F06D6563535402
ok "delete --all CAP package" 0 delete --all F06D6567700A
gp 0 list
if printf '%s' "$OUT" | grep -q "F06D6563535402\|F06D6567700A"; then fail "deleted objects still listed"; else pass "deleted objects gone"; fi
ok "create-ssd with keys" 0 create-ssd A000000151535032 --privs security-domain,authorized-management --keys 505152535455565758595A5B5C5D5E5F
ok "authenticate to the new SSD with its keys" 0 --sd A000000151535032 --key 505152535455565758595A5B5C5D5E5F list
ok "lock-card" 0 lock-card
gp 0 apdu 00A4040000; has "locked card selects with 6283" "$OUT" "6283"
ok "unlock-card" 0 unlock-card
ok "set-status --card CARD_LOCKED" 0 set-status --card CARD_LOCKED
ok "set-status --card SECURED" 0 set-status --card SECURED
ok "apdu -s (GET STATUS in the channel)" 0 --trace apdu -s 80F28000024F0000
has "apdu -s trace shows the plain APDU as a comment" "$ERR" "# C: 80F28000024F0000"
ok "put-key add AES set 30" 0 put-key --new-kvn 30 --new-key 000102030405060708090A0B0C0D0E0F
ok "authenticate with the new key set" 0 --kvn 30 --key 000102030405060708090A0B0C0D0E0F list
ok "put-key --from-master kdf3 as set 31" 0 --kvn 30 --key 000102030405060708090A0B0C0D0E0F put-key --new-kvn 31 --from-master "$K40" --kdf kdf3
ok "authenticate with the derived set (--kdf kdf3)" 0 --kvn 31 --key "$K40" --kdf kdf3 list
ok "delete-key 30" 0 --kvn 31 --key "$K40" --kdf kdf3 delete-key 30
expect_rc "deleted key version: 6A88 (exit 1)" 1 0 --kvn 30 --key 000102030405060708090A0B0C0D0E0F list
expect_rc "wrong key: exit 3" 3 0 --kvn 31 --key 000102030405060708090A0B0C0D0E0F --trace list
has "wrong key: KCVs named" "$ERR" "keys tried  : ENC KCV"
has "wrong key: likely causes" "$ERR" "likely causes"
if [ "$(printf '%s\n' "$ERR" | grep -c '^C: 8050')" = 1 ] && ! printf '%s\n' "$ERR" | grep -q '^C: 8482'; then
  pass "wrong key: one INITIALIZE UPDATE, no EXTERNAL AUTHENTICATE, no retry"
else fail "wrong key: authentication retried or EXTERNAL AUTHENTICATE sent"; fi
# Slot 1: SCP11b
ok "SCP11b list" 1 --scp 11b list
ok "SCP11b info" 1 --scp 11b --json info
has "SCP11b session" "$OUT" '"scp": "11b"'
ok "SCP11b apdu -s" 1 --scp 11b apdu -s 80CA006600
ok "SCP11b card also runs SCP03" 1 --scp 03 list
# SCP11b with the card's certificate chain verified (BF21 = test CA, SD certificate).
gp 1 --scp 11b list
has "SCP11b without --ca/--sd-key: warning on stderr" "$ERR" "warning: SCP11b: the card's key was not authenticated"
ok "SCP11b --ca (PEM CA certificate) verifies the chain" 1 --scp 11b --ca "$PROFILES/danger-test-scp11b-ca-cert.pem" --trace list
has "SCP11b --ca: chain verified in the trace" "$ERR" "certificate chain (2 certificate(s)) verified against --ca"
if printf '%s\n' "$ERR" | grep -q "warning:"; then fail "SCP11b --ca: unexpected warning"; else pass "SCP11b --ca: no warning"; fi
ok "SCP11b --ca (PEM public key) + --sd-key (SD certificate)" 1 --scp 11b --ca "$PROFILES/danger-test-scp11b-ca-pk.pem" --sd-key "$PROFILES/danger-test-scp11b-cert.der" list
expect_rc "SCP11b --ca with the wrong CA: exit 3" 3 1 --scp 11b --ca "$PROFILES/danger-test-scp11b-cert.der" --trace list
has "SCP11b wrong CA: the refused certificate is named" "$ERR" "certificate 1 of 2"
if printf '%s\n' "$ERR" | grep -q '^C: 8088'; then fail "SCP11b wrong CA: INTERNAL AUTHENTICATE sent"; else pass "SCP11b wrong CA: no INTERNAL AUTHENTICATE"; fi
stop_round

# ---------------------------------------------------------------------------------------
start_round "$PROFILES/scp03-s16.toml" "$PROFILES/scp02-i55.toml"
for level in mac mac+enc mac+enc+rmac all; do
  ok "list SCP03 S16 --security $level" 0 --key "$K40_256" --security "$level" list
done
ok "SCP03 S16 fixed 16-byte host challenge" 0 --key "$K40_256" --host-challenge 000102030405060708090A0B0C0D0E0F info
ok "SCP03 S16 install + delete" 0 --key "$K40_256" install --package F06D65635354 --applet F06D6563535401 --create F06D6563535403
ok "SCP03 S16 delete" 0 --key "$K40_256" delete F06D6563535403
for level in mac mac+enc; do
  ok "list SCP02 --security $level" 1 --security "$level" list
done
ok "SCP02 put-key DES" 1 put-key --new-kvn 21 --new-key 000102030405060708090A0B0C0D0E0F
ok "SCP02 new DES key set" 1 --kvn 21 --key 000102030405060708090A0B0C0D0E0F info
ok "SCP02 install + store-data" 1 --kvn 21 --key 000102030405060708090A0B0C0D0E0F install --package F06D65635354 --applet F06D6563535401 --create F06D6563535404
ok "SCP02 store-data" 1 --kvn 21 --key 000102030405060708090A0B0C0D0E0F store-data F06D6563535404 --dgi 0101024142
expect_rc "SCP02 --scp 03 on an SCP02 card: usage error" 2 1 --scp 03 list
expect_rc "SCP02 wrong MAC key: the card refuses the host cryptogram (exit 3)" 3 1 --kvn 21 \
  --key-enc 000102030405060708090A0B0C0D0E0F --key-mac "$K40" --key-dek 000102030405060708090A0B0C0D0E0F --trace list
has "SCP02 wrong MAC key: explained" "$ERR" "wrong MAC key"
if [ "$(printf '%s\n' "$ERR" | grep -c '^C: 8482')" = 1 ]; then pass "SCP02 wrong MAC key: one EXTERNAL AUTHENTICATE, no retry"; else fail "SCP02 wrong MAC key: EXTERNAL AUTHENTICATE count"; fi
ok "SCP02 right keys after one failure" 1 --kvn 21 --key 000102030405060708090A0B0C0D0E0F list
stop_round

# ---------------------------------------------------------------------------------------
start_round "$PROFILES/diversified-emv.toml" "$PROFILES/diversified-visa2.toml"
ok "EMV-diversified card with --kdf emv" 0 --kdf emv list
ok "EMV-diversified card: install with --kdf emv" 0 --kdf emv install --package F06D65635354 --applet F06D6563535401 --create F06D6563535405
expect_rc "EMV card without --kdf: exit 3" 3 0 list
has "hint names diversification first" "$ERR" "1. the card's keys are diversified"
expect_rc "EMV card with --kdf visa2: exit 3" 3 0 --kdf visa2 list
ok "VISA2-diversified card with --kdf visa2" 1 --kdf visa2 list
expect_rc "VISA2 card with --kdf emv: exit 3" 3 1 --kdf emv list
stop_round

# ---------------------------------------------------------------------------------------
TRACE_ARGS=(--key-enc F995D0A069335C7DF42E590317FFEA6D --key-mac 58563362EC5A4541ABCD32B34B1EAE7D
  --key-dek 0A02A6D687406DCFA09DC70B3EDB7E38 --host-challenge 9BD6BF878FB8E991 --security mac+enc --trace list)
TRACES=()
for run in 1 2; do
  start_round "$PROFILES/diversified-kdf3.toml" "$KAOH"
  if [ "$run" = 1 ]; then
    ok "KDF3-diversified card with --kdf kdf3" 0 --kdf kdf3 list
    expect_rc "KDF3 card without --kdf: exit 3" 3 0 list
    expect_rc "KDF3 card with --kdf emv (DES method on AES keys): usage error" 2 0 --kdf emv list
  fi
  ok "kaoh vector card, run $run" 1 "${TRACE_ARGS[@]}"
  TRACES+=("$(printf '%s\n' "$ERR" | grep -E '^(#|C:|R:)' | grep -v '^# reader')")
  stop_round
done
if [ "${TRACES[0]}" = "${TRACES[1]}" ]; then pass "trace identical across runs"; else
  fail "traces differ across runs"; diff <(printf '%s\n' "${TRACES[0]}") <(printf '%s\n' "${TRACES[1]}") || true
fi
# kaoh/globalplatform src/scp03Test.c mutual_auth (vectors/scp03.toml), after the SELECT.
WANT=$'C: 80500000089BD6BF878FB8E99100\nR: 000000000000000000003003703C80C2CC87EB3A35E4EDBA35E629C33600001E9000\nC: 848203001023EBFEDC579D22CDCDB6A25A5FF7891F'
GOT="$(wire "${TRACES[0]}" | sed -n '3,5p')"
if [ "$GOT" = "$WANT" ]; then pass "trace matches the kaoh/globalplatform SCP03 vector"; else
  fail "trace does not match the kaoh vector:"; printf '%s\n' "$GOT" >&2; fi

# ---------------------------------------------------------------------------------------
# TEST ONLY profiles with a fixed card challenge (profile field `card_challenge`).
start_round "$PROFILES/kaoh-scp02.toml" "$PROFILES/samsung-scp03.toml"
# kaoh/globalplatform src/scp02Test.c get_status_mac_only (vectors/scp02.toml), after the SELECT.
ok "kaoh SCP02 vector card" 0 --host-challenge D5AD539A60CA5E72 --security mac --trace \
  apdu -s 80F22002024F0000
WANT=$'C: 8050000008D5AD539A60CA5E7200\nR: 000074746E6E6E6262620102069FAA2A0591E73367DD78794D04315E9000\nC: 84820100107C799B3C771DBAE6BEF49310977617BA\nR: 9000\nC: 84F220020A4F00BB6E71C0EFCFCF0D00'
GOT="$(wire "$ERR" | sed -n '3,7p')"
if [ "$GOT" = "$WANT" ]; then pass "trace matches the kaoh/globalplatform SCP02 vector"; else
  fail "trace does not match the kaoh SCP02 vector:"; printf '%s\n' "$GOT" >&2; fi
# Samsung/OpenSCP-Java AES-128 S8 level 33 (vectors/scp03.toml), after the SELECT.
ok "Samsung SCP03 vector card" 1 --key-enc 1D72CD9283FD55162722C6BEAA4DC187 \
  --key-mac F4932BA02FFC3098D172790099D28382 --key-dek B4BDC610C3F6793708FF1132E2C5BF60 \
  --kvn 30 --host-challenge 06F85B77251BF794 --security all --trace apdu -s 80F22000024F00
WANT=$'C: 805030000806F85B77251BF79400\nR: A1A012430585513120853003709CE033FA78E6B10DDC2DBE8974C8B0DE00082A9000\nC: 8482330010B08D6CE26B6CB3CCB411CF0296EB7B1D\nR: 9000\nC: 84F22000185230BA64388B4A40E0B4DA5CC1DF51C285E4020D99D5AED1'
GOT="$(wire "$ERR" | sed -n '3,7p')"
if [ "$GOT" = "$WANT" ]; then pass "trace matches the Samsung OpenSCP SCP03 vector"; else
  fail "trace does not match the Samsung vector:"; printf '%s\n' "$GOT" >&2; fi
stop_round

# ---------------------------------------------------------------------------------------
# Extended-length APDUs over pcscd + vpcd (commands and vpcd frames longer than 261 bytes).
start_round "$PROFILES/extended-length.toml" "$PROFILES/short-only.toml"
# has_in NAME TEXT NEEDLE: as `has`, for long texts (no pipe: `grep -q` stopping early would
# make printf fail with SIGPIPE under pipefail).
has_in() {
  if grep -qF -- "$3" <<<"$2"; then pass "$1"; else fail "$1: '$3' not in the output"; fi
}
python3 -c 'import sys; sys.stdout.buffer.write(bytes(i % 251 for i in range(60000)))' >"$WORK/big.bin"
expect_rc "extended card, --apdu short: 60,000 bytes need more than 256 LOAD blocks (exit 2)" 2 0 \
  --apdu short --security all install "$WORK/big.bin" --package F06D6567700B --load-only
has "the block limit is explained" "$ERR" "more than 256 LOAD blocks of 224 bytes"
ok "extended card: 60,000-byte load file in extended LOAD blocks (SCP03 level 33)" 0 \
  --security all --trace install "$WORK/big.bin" --package F06D6567700B --load-only
has_in "auto chose extended APDUs from the ATR" "$ERR" "# APDU length: extended APDUs (the ATR's card capabilities announce extended Lc/Le)"
has_in "block size clamped to the card's 7F66 limit" "$ERR" "# block size 2015 bytes (extended APDUs, SCP03 level 33)"
EXT_LOADS="$(wire "$ERR" | grep -c '^C: 84E8....00' || true)"
[ "$EXT_LOADS" = 30 ] && pass "30 extended LOAD commands on the wire" || fail "extended LOAD commands: $EXT_LOADS, expected 30"
printf '%s\n' "$ERR" >"$WORK/ext.trace"
if "$MEC_BIN" trace decode "$WORK/ext.trace" >"$WORK/ext.decoded" 2>&1; then
  pass "mec trace decode reads the extended trace"; else fail "mec trace decode: $(tail -n 3 "$WORK/ext.decoded")"; fi
ok "extended card: the loaded file is listed" 0 list
has_in "list shows the 60,000-byte load file" "$OUT" "F06D6567700B"
expect_rc "short-only card: --apdu extended is a usage error (exit 2)" 2 1 --apdu extended list
has "the refusal names the ATR's card capabilities" "$ERR" "the card takes short APDUs only"
head -c 3000 "$WORK/big.bin" >"$WORK/small.bin"
ok "short-only card: auto loads with short APDUs" 1 --trace install "$WORK/small.bin" --package F06D6567700C --load-only
has_in "auto chose short APDUs from the ATR" "$ERR" "# APDU length: short APDUs (the ATR's card capabilities announce no extended Lc/Le)"
LONG="$(wire "$ERR" | awk 'length($2) > 2 * 261' | wc -l)"
[ "$LONG" = 0 ] && pass "no command longer than 261 bytes to the short-only card" || fail "$LONG long commands to the short-only card"
stop_round

printf 'gp-e2e: %d passed, %d failed\n' "$PASSED" "$FAILED"
[ "$FAILED" = 0 ]
