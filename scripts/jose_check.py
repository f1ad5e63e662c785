#!/usr/bin/env python3
"""Cross-language JOSE check for the roaming messages, with joserfc (a standard Python JOSE library).

The Rust test mec/tests/roam_jose.rs runs this script from the project venv (.venv/bin/python)
to show that what mec-roaming produces is plain RFC 7515 / 7516 / 7518 JOSE:

  verify  --key PUB.pem|PUB.jwk.json --token FILE    verify a compact JWS (ES256 only)
  sign    --key PRIV.pem --kid KID --payload FILE    sign FILE as a compact JWS, header
                                                     {"alg":"ES256","kid":KID,"typ":"mec-roam+jws"}
  decrypt --key PRIV.pem --token FILE                decrypt a compact JWE (ECDH-ES + A256GCM only)
  encrypt --key PUB.pem|PUB.jwk.json --payload FILE  encrypt FILE as a compact JWE (ECDH-ES + A256GCM)

Every command prints one JSON object on stdout and exits 0 on success, 1 when the check fails
(bad signature, wrong key, tag mismatch), 2 on usage or input errors.

Install: python3 -m venv .venv && .venv/bin/pip install "joserfc==1.8.0"
"""

import argparse
import base64
import json
import sys

try:
    from joserfc import jwe, jws
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(json.dumps({"ok": False, "error": f"joserfc not installed: {e}"}))
    sys.exit(2)

JWS_ALGS = ["ES256"]
JWE_ALGS = ["ECDH-ES", "A256GCM"]
TYP = "mec-roam+jws"


def load_key(path):
    """A P-256 key from PEM (PKCS#8 private or SPKI public) or from a JWK JSON file."""
    with open(path, "rb") as f:
        data = f.read()
    text = data.strip()
    if text.startswith(b"{"):
        key = ECKey.import_key(json.loads(text))
    else:
        key = ECKey.import_key(data)
    if key.curve_name != "P-256":
        raise ValueError(f"{path}: not a P-256 key")
    return key


def read(path):
    with open(path, "rb") as f:
        return f.read()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--key", required=True)
    v.add_argument("--token", required=True)
    s = sub.add_parser("sign")
    s.add_argument("--key", required=True)
    s.add_argument("--kid", required=True)
    s.add_argument("--payload", required=True)
    d = sub.add_parser("decrypt")
    d.add_argument("--key", required=True)
    d.add_argument("--token", required=True)
    e = sub.add_parser("encrypt")
    e.add_argument("--key", required=True)
    e.add_argument("--payload", required=True)
    args = p.parse_args()

    try:
        key = load_key(args.key)
    except (OSError, ValueError, JoseError) as err:
        print(json.dumps({"ok": False, "error": f"key: {err}"}))
        return 2

    try:
        if args.cmd == "verify":
            token = read(args.token).decode().strip()
            obj = jws.deserialize_compact(token, key, algorithms=JWS_ALGS)
            print(json.dumps({"ok": True, "header": obj.protected, "payload_b64": b64url(obj.payload)}))
        elif args.cmd == "sign":
            header = {"alg": "ES256", "kid": args.kid, "typ": TYP}
            token = jws.serialize_compact(header, read(args.payload), key, algorithms=JWS_ALGS)
            print(json.dumps({"ok": True, "token": token}))
        elif args.cmd == "decrypt":
            token = read(args.token).decode().strip()
            obj = jwe.decrypt_compact(token, key, algorithms=JWE_ALGS)
            print(json.dumps({"ok": True, "header": obj.protected, "plaintext_b64": b64url(obj.plaintext)}))
        else:
            header = {"alg": "ECDH-ES", "enc": "A256GCM"}
            token = jwe.encrypt_compact(header, read(args.payload), key, algorithms=JWE_ALGS)
            print(json.dumps({"ok": True, "token": token}))
    except JoseError as err:
        print(json.dumps({"ok": False, "error": f"{type(err).__name__}: {err}"}))
        return 1
    except (OSError, ValueError) as err:
        print(json.dumps({"ok": False, "error": f"input: {err}"}))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
