#!/usr/bin/env python3
"""A TLS peer built on Python's ssl module, for the closures the command-line tools cannot do.

Server role (serves connections, one thread each, every one with the same scenario):

    tls_peer.py server --scenario NAME --port P --cert CERT --key KEY [--size N]

  The client's first line of application data is "HELLO <id>". What the server saw is printed
  to stdout as "<id> <key>=<value>" lines.

Client role (one connection):

    tls_peer.py client --scenario NAME --port P --ca CA --protocol TLSv1.2|TLSv1.3 [--size N] [--id ID]

  What the client saw is printed to stdout as "<id> <key>=<value>" lines, ending with "<id> done=1".

Scenarios:

  answer-unwrap-same     server: waits for the client's close_notify, answers with SSLSocket.unwrap()
                         and sends --size bytes of plaintext in the same TCP segment (TCP_CORK);
                         then reads one plaintext line.
  answer-unwrap-split    server: waits for the client's close_notify, answers with unwrap(), reads one
                         plaintext line, then sends --size bytes of plaintext.
  initiate-unwrap-same   client: sends close_notify and --size bytes of plaintext in one segment (memory
                         BIOs), waits for the server's close_notify, then reads one plaintext line.
  initiate-unwrap-split  client: SSLSocket.unwrap() (close_notify, waits for the server's), reads one
                         plaintext line, then sends --size bytes of plaintext.
  never-answer           server: reads the client's close_notify and never answers it.
  data-after-close-notify  server: after the client's close_notify, sends --size bytes of application
                         data, then unwrap().
  truncate-boundary      either: sends a line of application data, then FIN without close_notify.
  truncate-inside-record either: sends the first --size bytes of a 100-byte record, then FIN.
  starttls-answer-unwrap   either, StartTLS: the client sends "STARTTLS <id>" in plaintext, the server
                         answers "OK", both start TLS (the client sends "HELLO <id>", the server
                         "TLS-FROM-NETTY|PEER <id>"); the Netty side ends TLS, the peer answers with unwrap();
                         then "PLAIN-FROM-NETTY <id>" and "PLAIN-FROM-PEER <id>" in plaintext, then FIN.
  starttls-initiate-unwrap either, StartTLS as above, but the peer ends TLS with unwrap() right after its
                         line over TLS.

The plaintext of --size bytes is the first N bytes of the lines "%08d\\n" % i, i = 0, 1, ...
"""

import argparse
import os
import socket
import ssl
import sys
import threading

TIMEOUT = 10.0


def out(conn_id, key, value):
    print(f"{conn_id} {key}={value}", flush=True)


def plaintext(size):
    lines = []
    total = 0
    i = 0
    while total < size:
        line = b"%08d\n" % i
        lines.append(line)
        total += len(line)
        i += 1
    return b"".join(lines)[:size]


def protocol_version(name):
    return {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}[name]


def raw_twin(sock):
    """A plain socket on a duplicate of sock's descriptor: reads and shutdowns below TLS."""
    twin = socket.fromfd(sock.fileno(), socket.AF_INET, socket.SOCK_STREAM)
    twin.settimeout(TIMEOUT)
    return twin


def read_line(recv, buffered=b""):
    """Reads up to and including b"\\n" with recv(); returns (line without newline, rest)."""
    data = buffered
    while b"\n" not in data:
        chunk = recv()
        if not chunk:
            raise EOFError(f"end of stream before a full line, got {data!r}")
        data += chunk
    line, _, rest = data.partition(b"\n")
    return line.decode("ascii", "replace"), rest


def read_until_close_notify(tls):
    """SSLSocket: reads application data until the peer's close_notify; returns the byte count."""
    count = 0
    while True:
        chunk = tls.recv(65536)
        if not chunk:
            return count
        count += len(chunk)


def await_eof(sock):
    """Reads and drops bytes until the peer's FIN; returns the byte count."""
    count = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return count
        count += len(chunk)


def peer_end(tls):
    """SSLSocket: how the peer's stream ends: close_notify, eof (FIN without it) or reset."""
    try:
        read_until_close_notify(tls)
        return "close_notify"
    except (ssl.SSLEOFError, EOFError):
        return "eof"
    except ConnectionResetError:
        return "reset"
    except ssl.SSLError as e:
        return f"ssl-error:{e.reason}"


class BioConnection:
    """TLS over memory BIOs on a blocking socket: full control over what goes on the wire, and when."""

    def __init__(self, sock, context, server_side):
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=server_side,
                                    server_hostname=None if server_side else "localhost")

    def flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            self.incoming.write_eof()
            raise EOFError("end of stream")
        self.incoming.write(data)

    def handshake(self):
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self.fill()
        self.flush()

    def send(self, data):
        self.tls.write(data)
        self.flush()

    def encrypt(self, data):
        """Returns the records for data without sending them."""
        self.tls.write(data)
        return self.outgoing.read()

    def recv(self):
        """Returns application data, or b"" once the peer's close_notify has arrived."""
        while True:
            try:
                return self.tls.read(65536)
            except ssl.SSLWantReadError:
                self.flush()
                self.fill()

    def end(self):
        """How the peer's stream ends: close_notify, eof or reset."""
        try:
            while self.recv():
                pass
            return "close_notify"
        except ssl.SSLZeroReturnError:
            return "close_notify"
        except (ssl.SSLEOFError, EOFError):
            return "eof"
        except ConnectionResetError:
            return "reset"
        except ssl.SSLError as e:
            return f"ssl-error:{e.reason}"


# ---------------------------------------------------------------------------------------------------
# Server role
# ---------------------------------------------------------------------------------------------------

def serve_tls_socket(conn, context, scenario, size):
    tls = context.wrap_socket(conn, server_side=True)
    hello, rest = read_line(lambda: tls.recv(65536))
    conn_id = hello.split()[1]
    out(conn_id, "scenario", scenario)
    out(conn_id, "protocol", tls.version())
    if scenario == "answer-unwrap-same":
        out(conn_id, "data-before-close-notify", len(rest) + read_until_close_notify(tls))
        tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        plain = tls.unwrap()
        plain.sendall(plaintext(size))
        plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        out(conn_id, "unwrapped", 1)
        line, _ = read_line(lambda: plain.recv(65536))
        out(conn_id, "plain-from-peer", line)
        out(conn_id, "after-plaintext", await_eof(plain))
    elif scenario == "answer-unwrap-split":
        out(conn_id, "data-before-close-notify", len(rest) + read_until_close_notify(tls))
        plain = tls.unwrap()
        out(conn_id, "unwrapped", 1)
        line, rest = read_line(lambda: plain.recv(65536))
        out(conn_id, "plain-from-peer", line)
        plain.sendall(plaintext(size))
        out(conn_id, "after-plaintext", len(rest) + await_eof(plain))
    elif scenario == "never-answer":
        out(conn_id, "data-before-close-notify", len(rest) + read_until_close_notify(tls))
        out(conn_id, "close-notify-received", 1)
        out(conn_id, "bytes-after-close-notify", await_eof(raw_twin(tls)))
    elif scenario == "data-after-close-notify":
        out(conn_id, "data-before-close-notify", len(rest) + read_until_close_notify(tls))
        tls.sendall(plaintext(size))
        out(conn_id, "data-sent-after-close-notify", size)
        plain = tls.unwrap()
        out(conn_id, "unwrapped", 1)
        out(conn_id, "bytes-after-unwrap", await_eof(plain))
    elif scenario == "truncate-boundary":
        tls.sendall(b"last words\n")
        raw_twin(tls).shutdown(socket.SHUT_WR)
        out(conn_id, "fin-sent", 1)
        out(conn_id, "peer-end", peer_end(tls))
    else:
        raise ValueError(f"unknown server scenario {scenario}")
    out(conn_id, "done", 1)


def serve_bio(conn, context, scenario, size):
    bio = BioConnection(conn, context, server_side=True)
    bio.handshake()
    hello, _ = read_line(bio.recv)
    conn_id = hello.split()[1]
    out(conn_id, "scenario", scenario)
    out(conn_id, "protocol", bio.tls.version())
    if scenario == "truncate-inside-record":
        records = bio.encrypt(b"x" * 100)
        conn.sendall(records[:size])
        conn.shutdown(socket.SHUT_WR)
        out(conn_id, "cut-record", f"{size}/{len(records)}")
        out(conn_id, "peer-end", bio.end())
    else:
        raise ValueError(f"unknown server scenario {scenario}")
    out(conn_id, "done", 1)


def starttls_end(tls, scenario, conn_id):
    """The TLS closure of a StartTLS scenario, then the plaintext lines each way; returns the plain socket."""
    if scenario == "starttls-initiate-unwrap":
        plain = tls.unwrap()  # our close_notify, then the Netty side's
    elif scenario == "starttls-answer-unwrap":
        out(conn_id, "data-before-close-notify", read_until_close_notify(tls))
        plain = tls.unwrap()
    else:
        raise ValueError(f"unknown StartTLS scenario {scenario}")
    out(conn_id, "unwrapped", 1)
    line, rest = read_line(lambda: plain.recv(65536))
    out(conn_id, "plain-from-peer", line)
    plain.sendall(f"PLAIN-FROM-PEER {conn_id}\n".encode())
    plain.shutdown(socket.SHUT_WR)
    out(conn_id, "after-plaintext", len(rest) + await_eof(plain))
    return plain


def serve_starttls(conn, context, scenario):
    line, rest = read_line(lambda: conn.recv(65536))
    if not line.startswith("STARTTLS ") or rest:
        raise AssertionError(f"expected a lone STARTTLS line, got {line!r} + {rest!r}")
    conn_id = line.split()[1]
    out(conn_id, "scenario", scenario)
    conn.sendall(b"OK\n")
    tls = context.wrap_socket(conn, server_side=True)
    out(conn_id, "protocol", tls.version())
    hello, rest = read_line(lambda: tls.recv(65536))
    out(conn_id, "tls-from-netty", hello)
    tls.sendall(f"TLS-FROM-PEER {conn_id}\n".encode())
    starttls_end(tls, scenario, conn_id)
    out(conn_id, "done", 1)


def serve_one(conn, context, scenario, size):
    conn.settimeout(TIMEOUT)
    try:
        if scenario.startswith("starttls-"):
            serve_starttls(conn, context, scenario)
        elif scenario == "truncate-inside-record":
            serve_bio(conn, context, scenario, size)
        else:
            serve_tls_socket(conn, context, scenario, size)
    except Exception as e:  # a probe connection, or a peer gone: report and serve the next one
        print(f"- connection failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    finally:
        conn.close()


def run_server(args):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(16)
    print(f"listening on 127.0.0.1:{args.port} scenario={args.scenario}", file=sys.stderr, flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_one, args=(conn, context, args.scenario, args.size), daemon=True).start()


# ---------------------------------------------------------------------------------------------------
# Client role
# ---------------------------------------------------------------------------------------------------

def client_context(args):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(args.ca)
    version = protocol_version(args.protocol)
    context.minimum_version = version
    context.maximum_version = version
    return context


def run_client(args):
    context = client_context(args)
    conn_id = args.id
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=TIMEOUT)
    out(conn_id, "scenario", args.scenario)
    if args.scenario == "initiate-unwrap-same":
        bio = BioConnection(sock, context, server_side=False)
        bio.handshake()
        out(conn_id, "protocol", bio.tls.version())
        bio.send(f"HELLO {conn_id}\n".encode())
        try:
            bio.tls.unwrap()
            raise AssertionError("unwrap() completed before the server's close_notify")
        except ssl.SSLWantReadError:
            pass
        sock.sendall(bio.outgoing.read() + plaintext(args.size))  # close_notify and plaintext, one segment
        out(conn_id, "close-notify-and-plaintext-sent", args.size)
        while True:
            try:
                bio.tls.unwrap()
                break
            except ssl.SSLWantReadError:
                bio.fill()
        out(conn_id, "unwrapped", 1)
        line, rest = read_line(lambda: sock.recv(65536), bio.incoming.read())
        out(conn_id, "plain-from-peer", line)
        sock.shutdown(socket.SHUT_WR)
        out(conn_id, "after-plaintext", len(rest) + await_eof(sock))
    elif args.scenario == "initiate-unwrap-split":
        tls = context.wrap_socket(sock, server_hostname="localhost")
        out(conn_id, "protocol", tls.version())
        tls.sendall(f"HELLO {conn_id}\n".encode())
        plain = tls.unwrap()
        out(conn_id, "unwrapped", 1)
        line, rest = read_line(lambda: plain.recv(65536))
        out(conn_id, "plain-from-peer", line)
        plain.sendall(plaintext(args.size))
        plain.shutdown(socket.SHUT_WR)
        out(conn_id, "after-plaintext", len(rest) + await_eof(plain))
    elif args.scenario == "truncate-boundary":
        tls = context.wrap_socket(sock, server_hostname="localhost")
        out(conn_id, "protocol", tls.version())
        tls.sendall(f"HELLO {conn_id}\n".encode())
        raw_twin(tls).shutdown(socket.SHUT_WR)
        out(conn_id, "fin-sent", 1)
        out(conn_id, "peer-end", peer_end(tls))
    elif args.scenario == "truncate-inside-record":
        bio = BioConnection(sock, context, server_side=False)
        bio.handshake()
        out(conn_id, "protocol", bio.tls.version())
        bio.send(f"HELLO {conn_id}\n".encode())
        records = bio.encrypt(b"x" * 100)
        sock.sendall(records[:args.size])
        sock.shutdown(socket.SHUT_WR)
        out(conn_id, "cut-record", f"{args.size}/{len(records)}")
        out(conn_id, "peer-end", bio.end())
    elif args.scenario.startswith("starttls-"):
        sock.sendall(f"STARTTLS {conn_id}\n".encode())
        line, rest = read_line(lambda: sock.recv(65536))
        if line != "OK" or rest:
            raise AssertionError(f"expected a lone OK line, got {line!r} + {rest!r}")
        tls = context.wrap_socket(sock, server_hostname="localhost")
        out(conn_id, "protocol", tls.version())
        tls.sendall(f"HELLO {conn_id}\n".encode())
        line, _ = read_line(lambda: tls.recv(65536))
        out(conn_id, "tls-from-netty", line)
        sock = starttls_end(tls, args.scenario, conn_id)
    else:
        raise ValueError(f"unknown client scenario {args.scenario}")
    sock.close()
    out(conn_id, "done", 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=["server", "client"])
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--ca")
    parser.add_argument("--protocol", default="TLSv1.3")
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--id", default="c")
    args = parser.parse_args()
    if args.role == "server":
        run_server(args)
    else:
        run_client(args)


if __name__ == "__main__":
    main()
