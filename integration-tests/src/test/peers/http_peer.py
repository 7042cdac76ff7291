#!/usr/bin/env python3
"""An HTTP/1.1 server on Python's ssl module that ends its TLS stream without close_notify, where a test says.

    http_peer.py server --port P --cert CERT --key KEY [--body N] [--cut N] [--piece N] [--record-cut N]

Each request names its scenario and connection id in its path: "GET /<scenario>/<id> HTTP/1.1". Every
response body is the first --body bytes of the lines "%08d\\n" % i (as tls_peer.py's plaintext), sent in
pieces of --piece content bytes, one TLS record per piece (for chunked framing a piece is one chunk: its
size line, data and CRLF in the same record); the head is a record of its own. What the server did is
printed to stdout as "<id> <key>=<value>" lines, ending with "<id> done=1".

Scenarios (<framing> is close-delimited, content-length or chunked):

  cut-<framing>-boundary   the head and the records of the first --cut content bytes, then a FIN: the
                           stream ends at a record boundary, inside the body.
  cut-<framing>-inside-record  as above, then the first --record-cut bytes of the next piece's record,
                           then a FIN: the stream ends inside a record, inside the body.
  cut-<framing>-<where>-reset  as above, but once the client's kernel has acknowledged every byte sent, a
                           reset (SO_LINGER 0) instead of the FIN.
  between-messages         answers two requests on one connection (keep-alive), the first with a
                           Content-Length body, the second with a chunked one, both complete; then a FIN.

After its FIN (not after a reset) the server reads until the client's close_notify, FIN or reset and
reports which ("peer-end"). Records are built with memory BIOs, so each one's bytes are known exactly.
"""

import argparse
import fcntl
import socket
import ssl
import struct
import sys
import termios
import threading
import time

from tls_peer import TIMEOUT, BioConnection, out, plaintext

FRAMINGS = ("close-delimited", "content-length", "chunked")


def head(framing, size):
    lines = ["HTTP/1.1 200 OK", "Content-Type: text/plain"]
    if framing == "close-delimited":
        lines.append("Connection: close")
    elif framing == "content-length":
        lines.append(f"Content-Length: {size}")
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
    else:
        raise ValueError(f"unknown framing {framing}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def framed(framing, piece):
    if framing == "chunked":
        return b"%x\r\n" % len(piece) + piece + b"\r\n"
    return piece


def pieces(body, size):
    return [body[i:i + size] for i in range(0, len(body), size)]


def read_request(bio, buffered):
    """Reads one request head (no body); returns (scenario, id, rest)."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = bio.recv()
        if not chunk:
            raise EOFError(f"close_notify before a full request head, got {data!r}")
        data += chunk
    request, _, rest = data.partition(b"\r\n\r\n")
    _, path, _ = request.split(b"\r\n", 1)[0].decode("ascii").split(" ", 2)
    _, scenario, conn_id = path.split("/", 2)
    return scenario, conn_id, rest


class Server:

    def __init__(self, args):
        self.body = plaintext(args.body)
        self.cut = args.cut
        self.piece = args.piece
        self.record_cut = args.record_cut
        if self.cut % self.piece:
            raise ValueError("--cut must be a multiple of --piece")

    def send_records(self, bio, framing, content):
        """Sends the body pieces of content, one record each; returns the record sizes."""
        sizes = []
        for piece in pieces(content, self.piece):
            records = bio.encrypt(framed(framing, piece))
            bio.sock.sendall(records)
            sizes.append(len(records))
        return sizes

    @staticmethod
    def reset_when_acknowledged(conn, conn_id):
        """Waits until the peer's kernel has acknowledged every byte sent, then closes with a reset."""
        deadline = time.monotonic() + TIMEOUT
        while struct.unpack("i", fcntl.ioctl(conn.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0] > 0:
            if time.monotonic() > deadline:
                raise TimeoutError("bytes still unacknowledged")
            time.sleep(0.002)  # the peer's kernel acknowledges on its own: nothing to wait on but the queue
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        out(conn_id, "reset-sent", 1)

    def cut_response(self, bio, conn_id, framing, inside_record, reset):
        bio.send(head(framing, len(self.body)))
        self.send_records(bio, framing, self.body[:self.cut])
        out(conn_id, "sent-content", self.cut)
        if inside_record:
            bio.flush()
            record = bio.encrypt(framed(framing, self.body[self.cut:self.cut + self.piece]))
            bio.sock.sendall(record[:self.record_cut])
            out(conn_id, "cut-record", f"{self.record_cut}/{len(record)}")
        if reset:
            self.reset_when_acknowledged(bio.sock, conn_id)
        else:
            bio.sock.shutdown(socket.SHUT_WR)
            out(conn_id, "fin-sent", 1)

    def whole_response(self, bio, framing):
        bio.send(head(framing, len(self.body)))
        self.send_records(bio, framing, self.body)
        if framing == "chunked":
            bio.send(b"0\r\n\r\n")

    def serve(self, conn, context):
        bio = BioConnection(conn, context, server_side=True)
        bio.handshake()
        scenario, conn_id, rest = read_request(bio, b"")
        out(conn_id, "scenario", scenario)
        out(conn_id, "protocol", bio.tls.version())
        if scenario == "between-messages":
            self.whole_response(bio, "content-length")
            out(conn_id, "response-1", "content-length")
            _, _, rest = read_request(bio, rest)
            self.whole_response(bio, "chunked")
            out(conn_id, "response-2", "chunked")
            conn.shutdown(socket.SHUT_WR)
            out(conn_id, "fin-sent", 1)
        elif scenario.startswith("cut-"):
            reset = scenario.endswith("-reset")
            name = scenario[:-len("-reset")] if reset else scenario
            where = "inside-record" if name.endswith("-inside-record") else "boundary"
            framing = name[len("cut-"):-len("-" + where)]
            if framing not in FRAMINGS or not name.endswith("-" + where):
                raise ValueError(f"unknown scenario {scenario}")
            self.cut_response(bio, conn_id, framing, where == "inside-record", reset)
            if reset:
                out(conn_id, "done", 1)
                return
        else:
            raise ValueError(f"unknown scenario {scenario}")
        out(conn_id, "peer-end", bio.end())
        out(conn_id, "done", 1)


def serve_one(server, conn, context):
    conn.settimeout(TIMEOUT)
    try:
        server.serve(conn, context)
    except Exception as e:  # a probe connection, or a peer gone: report and serve the next one
        print(f"- connection failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=["server"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--body", type=int, default=102_400)
    parser.add_argument("--cut", type=int, default=51_200)
    parser.add_argument("--piece", type=int, default=6_400)
    parser.add_argument("--record-cut", type=int, default=100)
    args = parser.parse_args()
    server = Server(args)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(16)
    print(f"listening on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_one, args=(server, conn, context), daemon=True).start()


if __name__ == "__main__":
    main()
