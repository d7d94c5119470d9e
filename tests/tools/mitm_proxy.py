#!/usr/bin/env python3
"""A malicious host between a KeyMeld client and its gateway (tests only).

Forwards every request to the gateway and, in every JSON reply, replaces
each enclave public key named by --swap REAL=FAKE (hex strings) with the
fake key, wherever it appears: the reserve reply, /public-key, /enclaves,
and the "public_key" the attestation route relays beside its document.
The document itself (base64 COSE, signed by the enclave's provider) is
passed on untouched: that is what the client must catch.

Every request is logged to --log as one JSON line {"method","path","body"},
so the test can prove that nothing encrypted to a fake key left the client.
Listens on 127.0.0.1 only; prints "listening on PORT" when ready.
"""
import argparse
import http.client
import http.server
import json
import sys
import threading
import urllib.parse

LOCK = threading.Lock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--swap", action="append", default=[], help="REALHEX=FAKEHEX")
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    up = urllib.parse.urlparse(args.upstream)
    swaps = [tuple(s.split("=", 1)) for s in args.swap]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            pass

        def relay(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            with LOCK, open(args.log, "a") as f:
                f.write(json.dumps({"method": self.command, "path": self.path,
                                    "body": body.decode("utf-8", "replace")}) + "\n")
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("host", "connection", "content-length")}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.getheader("Content-Type", "").startswith("application/json"):
                text = data.decode()
                for real, fake in swaps:
                    text = text.replace(real, fake)
                data = text.encode()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = do_PUT = do_DELETE = relay

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("listening on %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
