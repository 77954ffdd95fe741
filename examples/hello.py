#!/usr/bin/env python3
"""A web server for the quickstart that answers every GET with its name, so a client can see
which one the failover proxy sent it to.

  python3 examples/hello.py NAME PORT
"""
import http.server
import sys

name, port = sys.argv[1], int(sys.argv[2])


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - the handler's name is http.server's
        body = f"{name}\n".encode()
        # Head and body in one write: written apart, the body waits for the client's delayed
        # ACK (Nagle), 40 ms on every keep-alive request.
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Health checks close with a reset (no TIME_WAIT per check, as HAProxy's do): that is
        # not an error worth a traceback in the log.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


Server(("127.0.0.1", port), Hello).serve_forever()
