"""A webhook receiver for keyaudit's end-to-end tests: an HTTPS server on loopback (its own CA, generated at start,
written to a PEM file that keyaudit is pointed at with SSL_CERT_FILE) that records every POST, and a plain-HTTP control
port for the tests:

  GET  /received     every POST received: {path, headers, body}
  POST /behaviour    {path, status?: 429|500|…, times?: N, retry_after?: seconds, delay_ms?: N}: how the next N posts
                     to path are answered (default 200); several rules apply in order
  POST /reset        forget everything

Usage: python webhook_receiver.py DIR   (writes DIR/ca.pem; prints
``WEBHOOK_RECEIVER_READY https://127.0.0.1:PORT http://127.0.0.1:CONTROL_PORT CA_FILE``). Loopback only; a test tool.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import ipaddress

LOCK = threading.Lock()
RECEIVED: list[dict[str, Any]] = []
BEHAVIOUR: list[dict[str, Any]] = []


def certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyaudit test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_file, cert_file, key_file


def behaviour_for(path: str) -> dict[str, Any] | None:
    with LOCK:
        for rule in BEHAVIOUR:
            if rule.get("path") == path and rule.get("times", 1) > 0:
                rule["times"] = rule.get("times", 1) - 1
                return dict(rule)
    return None


class Hooks(BaseHTTPRequestHandler):
    """The HTTPS side: records each POST, answers as the behaviour says."""

    def log_message(self, *_: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        rule = behaviour_for(self.path)
        if rule and rule.get("delay_ms"):
            time.sleep(rule["delay_ms"] / 1000)
        with LOCK:
            RECEIVED.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                             "body": body.decode("utf-8", "replace"), "status": (rule or {}).get("status", 200)})
        status = (rule or {}).get("status", 200)
        payload = b"ok" if status == 200 else f"answered {status} by the test".encode()
        self.send_response(status)
        if rule and rule.get("retry_after") is not None:
            self.send_header("Retry-After", str(rule["retry_after"]))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class Control(BaseHTTPRequestHandler):
    """The plain-HTTP control side, for the tests."""

    def log_message(self, *_: Any) -> None:
        pass

    def answer(self, value: Any) -> None:
        payload = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802
        # Read what the request sent, if anything: a socket closed with unread bytes is reset (RST), and the reset can
        # destroy the answer on its way to the test.
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with LOCK:
            self.answer(list(RECEIVED))

    def do_POST(self) -> None:  # noqa: N802
        args = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with LOCK:
            if self.path == "/behaviour":
                BEHAVIOUR.append(args)
            elif self.path == "/reset":
                RECEIVED.clear()
                BEHAVIOUR.clear()
        self.answer({"ok": True})


def main() -> None:
    directory = Path(sys.argv[1])
    ca_file, cert_file, key_file = certificates(directory)
    hooks = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    hooks.socket = context.wrap_socket(hooks.socket, server_side=True)
    control = ThreadingHTTPServer(("127.0.0.1", 0), Control)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    print(f"WEBHOOK_RECEIVER_READY https://127.0.0.1:{hooks.server_port} "
          f"http://127.0.0.1:{control.server_port} {ca_file}", flush=True)
    hooks.serve_forever()


if __name__ == "__main__":
    main()
