#!/usr/bin/env python3
"""Loopback stand-in for the three Google services vm-startup.sh talks to,
for scripts/checks/gcp.sh.

Serves files under ROOT by URL path, as the real services would answer:
  /computeMetadata/v1/...                          the metadata server
  /storage/v1/b/BUCKET/o/OBJECT?alt=media          Cloud Storage's JSON API
  /v1/projects/P/secrets/S/versions/latest:access  Secret Manager
and checks what the real ones check: metadata requests must carry
"Metadata-Flavor: Google", the others "Authorization: Bearer TOKEN". The first
FAIL_FIRST authorized requests get 403, as while a new IAM binding propagates.
Each request is appended to ROOT/../requests.log. Binds 127.0.0.1 on a free
port and writes that port to PORT_FILE.

usage: fake_gcp_api.py ROOT PORT_FILE TOKEN FAIL_FIRST
"""
import http.server
import os
import sys
import urllib.parse

root, port_file, token, fail_first = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
log_path = os.path.join(os.path.dirname(os.path.abspath(root)), "requests.log")
state = {"failed": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        with open(log_path, "a") as log:
            log.write(f"GET {self.path}\n")
        if path.startswith("/computeMetadata/"):
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.answer(403, b"missing Metadata-Flavor\n")
        else:
            if self.headers.get("Authorization") != f"Bearer {token}":
                return self.answer(401, b"bad or missing bearer token\n")
            if state["failed"] < fail_first:
                state["failed"] += 1
                return self.answer(403, b"permission denied (IAM not yet propagated)\n")
        file = os.path.normpath(os.path.join(root, path.lstrip("/")))
        if not file.startswith(root) or not os.path.isfile(file):
            return self.answer(404, b"not found\n")
        with open(file, "rb") as f:
            self.answer(200, f.read())

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
