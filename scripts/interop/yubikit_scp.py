#!/usr/bin/env python3
"""PC/SC interop tests: yubikit (yubikey-manager) opens secure channels on the virtual SE.

Run from the project's venv, against a pcscd that shows the virtual SE (scripts/interop.sh sets
PCSCLITE_CSOCK_NAME to its private pcscd). Each test prints one line `PASS name` or
`FAIL name: reason`; the exit status is the number of failures (0 = all passed).

yubikit's host side (yubikit.core.smartcard.scp) is an independent implementation of
GlobalPlatform SCP03 (GPC 2.3 Amendment D) and SCP11b (Amendment F): a session it accepts is a
real interoperability result, not a round trip through our own code.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from cryptography import x509
from smartcard.System import readers
from ykman.pcsc import ScardSmartCardConnection
from yubikit.core.smartcard.scp import (
    KeyRef,
    Scp03KeyParams,
    Scp11KeyParams,
    ScpKid,
    StaticKeys,
)
from yubikit.core import Version
from yubikit.core.smartcard import AID, SmartCardProtocol
from yubikit.securitydomain import SecurityDomainSession

# GPC 2.3 §11.3: GET DATA tags used here.
TAG_CPLC = 0x9F7F  # card production life cycle data (GPC 2.3 §H.6)
TAG_CARD_DATA = 0x0066  # card recognition data (GPC 2.3 §H.2)
TAG_KEY_INFORMATION = 0x00E0  # key information template (GPC 2.3 §11.3.3.1)

# The well-known GlobalPlatform test keys (404142...4F): test use only.
DANGER_TEST_KEY = bytes(range(0x40, 0x50))


def connect(reader_name: str) -> ScardSmartCardConnection:
    matches = [r for r in readers() if r.name == reader_name]
    if not matches:
        names = [r.name for r in readers()]
        raise RuntimeError(f"reader {reader_name!r} not found; readers: {names}")
    return ScardSmartCardConnection(matches[0].createConnection())


def short_apdu_session(conn: ScardSmartCardConnection) -> SecurityDomainSession:
    """A SecurityDomainSession that sends short APDUs only (with command chaining).

    yubikit's own constructor selects extended APDUs when the ATR looks like a USB YubiKey
    (ATR byte 1 = Fx); this builds the same session with `configure(force_short=True)`, the
    form an NFC reader would use, so that both encodings are tested.
    """
    session = SecurityDomainSession.__new__(SecurityDomainSession)
    session.protocol = SmartCardProtocol(conn)
    session.protocol.select(AID.SECURE_DOMAIN)
    session.protocol.configure(Version(5, 3, 0), force_short=True)
    return session


def plain_get_data(reader: str, tag: int) -> bytes:
    """GET DATA without a secure channel (after SELECT of the ISD)."""
    conn = connect(reader)
    try:
        session = SecurityDomainSession(conn)
        return session.get_data(tag)
    finally:
        conn.close()


def test_scp03(reader: str, kvn: int, tag: int, short: bool = False) -> str:
    """SCP03 at security level 33 (C-MAC, C-DEC, R-MAC, R-ENC), then a secured GET DATA."""
    expected = plain_get_data(reader, tag)
    conn = connect(reader)
    try:
        session = short_apdu_session(conn) if short else SecurityDomainSession(conn)
        keys = StaticKeys(DANGER_TEST_KEY, DANGER_TEST_KEY, DANGER_TEST_KEY)
        # yubikit's SCP03 EXTERNAL AUTHENTICATE uses P1 = 33 (GPC Amd D §7.1.2).
        session.authenticate(Scp03KeyParams(ref=KeyRef(ScpKid.SCP03, kvn), keys=keys))
        secured = session.get_data(tag)
        if secured != expected:
            raise AssertionError(
                f"secured GET DATA {tag:04X} = {secured.hex()} != plain {expected.hex()}"
            )
        # A second secured command proves the MAC chaining and counters continue.
        again = session.get_data(tag)
        if again != expected:
            raise AssertionError("second secured GET DATA differs")
        form = "short" if short else "yubikit's default"
        return f"GET DATA {tag:04X} -> {len(secured)} bytes over SCP03 level 33 ({form} APDUs)"
    finally:
        conn.close()


def test_scp03_wrong_key(reader: str, kvn: int) -> str:
    """Wrong static keys: the card cryptogram check fails on the host side, as with a real card."""
    conn = connect(reader)
    try:
        session = SecurityDomainSession(conn)
        wrong = StaticKeys(bytes(16), bytes(16), bytes(16))
        try:
            session.authenticate(Scp03KeyParams(ref=KeyRef(ScpKid.SCP03, kvn), keys=wrong))
        except ValueError:
            return "wrong keys rejected"
        raise AssertionError("authentication with wrong keys succeeded")
    finally:
        conn.close()


def test_scp11b(reader: str, kvn: int, tag: int, short: bool = False) -> str:
    """SCP11b: read the SD certificate (GET DATA BF21), key agreement, receipt check, secured GET DATA."""
    expected = plain_get_data(reader, tag)
    conn = connect(reader)
    try:
        session = short_apdu_session(conn) if short else SecurityDomainSession(conn)
        ref = KeyRef(ScpKid.SCP11b, kvn)
        chain = session.get_certificate_bundle(ref)
        if not chain:
            raise AssertionError("empty certificate bundle")
        leaf: x509.Certificate = chain[-1]
        session.authenticate(Scp11KeyParams(ref, leaf.public_key()))
        secured = session.get_data(tag)
        if secured != expected:
            raise AssertionError(
                f"secured GET DATA {tag:04X} = {secured.hex()} != plain {expected.hex()}"
            )
        form = "short" if short else "yubikit's default"
        return f"certificate {leaf.subject.rfc4514_string()!r}, GET DATA {tag:04X} over SCP11b ({form} APDUs)"
    finally:
        conn.close()


def test_key_information(reader: str) -> str:
    """yubikit parses the key information template (bare E0 format)."""
    conn = connect(reader)
    try:
        info = SecurityDomainSession(conn).get_key_information()
        if not info:
            raise AssertionError("no keys reported")
        return ", ".join(f"{ref}" for ref in info)
    finally:
        conn.close()


def test_put_key(reader: str, kvn: int, new_kvn: int) -> str:
    """PUT KEY of a new SCP03 key set over SCP03 (persistence is checked after a restart)."""
    conn = connect(reader)
    try:
        session = short_apdu_session(conn)
        keys = StaticKeys(DANGER_TEST_KEY, DANGER_TEST_KEY, DANGER_TEST_KEY)
        session.authenticate(Scp03KeyParams(ref=KeyRef(ScpKid.SCP03, kvn), keys=keys))
        session.put_key(KeyRef(ScpKid.SCP03, new_kvn), new_static_keys())
        return f"key set {new_kvn:02X} added"
    finally:
        conn.close()


def new_static_keys() -> StaticKeys:
    # Deterministic test keys for the restart check (test use only).
    return StaticKeys(bytes([0x11] * 16), bytes([0x22] * 16), bytes([0x33] * 16))


def test_new_keys(reader: str, new_kvn: int) -> str:
    """After a restart from --state, the key set added before the kill still authenticates."""
    conn = connect(reader)
    try:
        session = short_apdu_session(conn)
        session.authenticate(Scp03KeyParams(ref=KeyRef(ScpKid.SCP03, new_kvn), keys=new_static_keys()))
        data = session.get_data(TAG_CPLC)
        return f"key set {new_kvn:02X} authenticates after restart ({len(data)} bytes)"
    finally:
        conn.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--reader", required=True, help="exact PC/SC reader name")
    p.add_argument("--kvn", type=lambda s: int(s, 16), default=0xFF, help="SCP03 key version (hex)")
    p.add_argument("--scp11-kvn", type=lambda s: int(s, 16), default=0x01, help="SCP11b key version (hex)")
    p.add_argument("--new-kvn", type=lambda s: int(s, 16), default=0x30, help="key version for PUT KEY (hex)")
    p.add_argument("--tag", type=lambda s: int(s, 16), default=TAG_CPLC, help="GET DATA tag (hex)")
    p.add_argument(
        "tests",
        nargs="+",
        choices=[
            "scp03",
            "scp03-short",
            "scp03-wrong-key",
            "scp11b",
            "scp11b-short",
            "key-information",
            "put-key",
            "new-keys",
        ],
    )
    args = p.parse_args()
    runners = {
        "scp03": lambda: test_scp03(args.reader, args.kvn, args.tag),
        "scp03-short": lambda: test_scp03(args.reader, args.kvn, args.tag, short=True),
        "scp11b-short": lambda: test_scp11b(args.reader, args.scp11_kvn, args.tag, short=True),
        "scp03-wrong-key": lambda: test_scp03_wrong_key(args.reader, args.kvn),
        "scp11b": lambda: test_scp11b(args.reader, args.scp11_kvn, args.tag),
        "key-information": lambda: test_key_information(args.reader),
        "put-key": lambda: test_put_key(args.reader, args.kvn, args.new_kvn),
        "new-keys": lambda: test_new_keys(args.reader, args.new_kvn),
    }
    failures = 0
    for name in args.tests:
        try:
            detail = runners[name]()
            print(f"PASS {name}: {detail}", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure the same way
            failures += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc(file=sys.stderr)
    return failures


if __name__ == "__main__":
    sys.exit(main())
