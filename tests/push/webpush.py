"""Web Push as a browser sees it, with implementations independent of Precinct's: the
PyPI packages `http_ece` (RFC 8188/8291 content encoding) and `cryptography` (P-256,
ECDSA).

Input (stdin, JSON), one of:
  {"op": "keys"}
      -> {"p256dh": ..., "auth": ..., "private": ...}: a subscription's key pair and
         authentication secret (base64url, no padding; `private` is the raw scalar).
  {"op": "open", "private": ..., "auth": ..., "endpoint": ..., "messages":
      [{"body": <base64 of the raw body>, "authorization": <Authorization header>}]}
      -> {"opened": [{"payload": <the decrypted text, or null>, "error": <why not>,
          "vapid": {"valid": bool, "k": ..., "claims": {...}, "error": ...}}]}
         Each body is decrypted (aes128gcm) with the subscription's private key and
         secret; the VAPID JWT (RFC 8292) is verified with the key `k` it names, and its
         `aud` must be the endpoint's origin, its `exp` within 24 hours.
Installed by deploy/local/stack.sh (make test's set-up); called by tests/e2e/push.rs.
"""

import base64
import json
import sys
import time
from urllib.parse import urlsplit

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def keys() -> dict:
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    scalar = private.private_numbers().private_value.to_bytes(32, "big")
    import os

    return {"p256dh": b64url(public), "auth": b64url(os.urandom(16)), "private": b64url(scalar)}


def origin(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    default = {"http": 80, "https": 443}[parts.scheme]
    port = parts.port or default
    host = parts.hostname
    return f"{parts.scheme}://{host}" + ("" if port == default else f":{port}")


def vapid(authorization: str, endpoint: str) -> dict:
    out = {"valid": False, "k": None, "claims": None, "error": None}
    try:
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError(f"scheme {scheme!r} is not vapid")
        fields = dict(p.strip().split("=", 1) for p in params.split(","))
        token, k = fields["t"], fields["k"]
        out["k"] = k
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(unb64url(header_b64))
        if header.get("alg") != "ES256":
            raise ValueError(f"alg {header.get('alg')!r} is not ES256")
        claims = json.loads(unb64url(claims_b64))
        out["claims"] = claims
        raw = unb64url(signature_b64)
        if len(raw) != 64:
            raise ValueError("an ES256 signature is 64 bytes")
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(k))
        public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        if claims.get("aud") != origin(endpoint):
            raise ValueError(f"aud {claims.get('aud')!r} is not {origin(endpoint)!r}")
        now = time.time()
        if not (now < claims.get("exp", 0) <= now + 24 * 3600):
            raise ValueError(f"exp {claims.get('exp')!r} is not within 24 hours")
        out["valid"] = True
    except (InvalidSignature, KeyError, ValueError) as e:
        out["error"] = f"{type(e).__name__}: {e}"
    return out


def open_messages(request: dict) -> dict:
    scalar = int.from_bytes(unb64url(request["private"]), "big")
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    auth = unb64url(request["auth"])
    opened = []
    for message in request["messages"]:
        entry = {"payload": None, "error": None}
        try:
            body = base64.b64decode(message["body"])
            entry["payload"] = http_ece.decrypt(
                body, private_key=private, auth_secret=auth, version="aes128gcm"
            ).decode()
        except Exception as e:  # noqa: BLE001 - any failure is the answer
            entry["error"] = f"{type(e).__name__}: {e}"
        entry["vapid"] = vapid(message.get("authorization", ""), request["endpoint"])
        opened.append(entry)
    return {"opened": opened}


def main() -> None:
    request = json.load(sys.stdin)
    if request["op"] == "keys":
        answer = keys()
    elif request["op"] == "open":
        answer = open_messages(request)
    else:
        raise SystemExit(f"unknown op {request['op']!r}")
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
