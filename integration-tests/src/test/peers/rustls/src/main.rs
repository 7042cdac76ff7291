//! A TLS peer built on rustls 0.20 (Debian's librust-rustls-dev) for the interop tests of graceful-tls-close.
//! It speaks the same command line and the same stdout lines as the Go peer (`../go/tls_peer.go`):
//!
//! ```text
//! rustls-peer server --port P --cert CERT --key KEY
//! rustls-peer client --port P --ca CA --protocol TLSv1.2|TLSv1.3 --scenario NAME --id ID
//! ```
//!
//! The client sends "HELLO <id> <scenario>\n", the server answers "OK <id>\n"; then each side plays the scenario.
//! What the peer saw is printed as "<id> <key>=<value>" lines, ending with "<id> done=1".
//!
//! Scenarios (what this peer does once the HELLO/OK exchange is over):
//!
//! - `await-close`: reads until the stream ends and reports how (`peer-end`); after a close_notify it replies
//!   with its own (`send_close_notify`), then closes the socket.
//! - `close-notify`: sends close_notify (`send_close_notify`), keeps reading and reports how our side ended.
//! - `close`: sends close_notify and closes the socket at once.
//! - `drop`: shuts the TCP output down (FIN) without close_notify, keeps reading, reports how our side ended.
//!
//! The verdict (`peer-end`) comes from rustls itself. `read_tls` returns `Ok(0)` at the transport's end of stream;
//! after `process_new_packets`, `reader().read` returns `Ok(0)` only when the peer's close_notify arrived, and
//! `Err(UnexpectedEof)` when the transport ended without it. (rustls 0.20's `Stream::read` is not used: it returns
//! `Ok(0)` on any end of stream, close_notify or not.) Alongside, the raw bytes read are split into records to
//! report where the stream ended (`raw-end`: at a record `boundary` or `inside-record`).

use rustls::{Certificate, ClientConfig, ClientConnection, Connection, PrivateKey, RootCertStore, ServerConfig,
             ServerConnection, ServerName};
use std::convert::TryFrom;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

fn out(id: &str, key: &str, value: &str) {
    let stdout = io::stdout();
    let mut lock = stdout.lock();
    let _ = writeln!(lock, "{} {}={}", id, key, value);
    let _ = lock.flush();
}

// ---------------------------------------------------------------------------------------------------------------
// PEM (the test certificates are PEM files): a minimal reader, base64 by hand
// ---------------------------------------------------------------------------------------------------------------

fn base64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some((c - b'A') as u32),
        b'a'..=b'z' => Some((c - b'a') as u32 + 26),
        b'0'..=b'9' => Some((c - b'0') as u32 + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        if let Some(v) = base64_value(c) {
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                bytes.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
    }
    bytes
}

/// The DER of every PEM block in `path` whose label ends with `label_suffix` ("CERTIFICATE", "PRIVATE KEY").
fn pem_blocks(path: &str, label_suffix: &str) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {}", path, e));
    let mut blocks = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN ") {
            let label = line.trim_start_matches("-----BEGIN ").trim_end_matches("-----");
            body = if label.ends_with(label_suffix) { Some(String::new()) } else { None };
        } else if line.starts_with("-----END ") {
            if let Some(b) = body.take() {
                blocks.push(base64_decode(&b));
            }
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    blocks
}

// ---------------------------------------------------------------------------------------------------------------
// The raw stream, split into records
// ---------------------------------------------------------------------------------------------------------------

/// Reads from the socket and follows the record headers in what it read.
struct RecordingReader<'a> {
    sock: &'a TcpStream,
    header: [u8; 5],
    header_len: usize,
    body_left: usize,
    in_body: bool,
    records: u64,
    last_type: u8,
}

impl<'a> RecordingReader<'a> {
    fn new(sock: &'a TcpStream) -> Self {
        RecordingReader { sock, header: [0; 5], header_len: 0, body_left: 0, in_body: false, records: 0, last_type: 0 }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if !self.in_body {
                let take = (5 - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
                self.header_len += take;
                bytes = &bytes[take..];
                if self.header_len == 5 {
                    self.header_len = 0;
                    self.body_left = ((self.header[3] as usize) << 8) | self.header[4] as usize;
                    self.in_body = true;
                }
            } else {
                let take = self.body_left.min(bytes.len());
                self.body_left -= take;
                bytes = &bytes[take..];
            }
            if self.in_body && self.body_left == 0 {
                self.in_body = false;
                self.records += 1;
                self.last_type = self.header[0];
            }
        }
    }

    fn at_boundary(&self) -> bool {
        !self.in_body && self.header_len == 0
    }
}

impl<'a> Read for RecordingReader<'a> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&*self.sock).read(buf)?;
        self.feed(&buf[..n]);
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// One connection
// ---------------------------------------------------------------------------------------------------------------

struct Peer<'a> {
    conn: Connection,
    sock: &'a TcpStream,
    raw: RecordingReader<'a>,
    /// Application data read but not yet consumed by `read_line`.
    pending: Vec<u8>,
}

impl<'a> Peer<'a> {
    fn flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut &*self.sock)?;
        }
        Ok(())
    }

    fn handshake(&mut self) -> io::Result<()> {
        while self.conn.is_handshaking() {
            self.flush()?;
            if self.conn.is_handshaking() {
                if self.conn.read_tls(&mut self.raw)? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                self.conn.process_new_packets().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
        }
        self.flush()
    }

    /// Application data as rustls hands it out: Ok(0) only after the peer's close_notify.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            self.flush()?;
            self.conn.read_tls(&mut self.raw)?;
            if let Err(e) = self.conn.process_new_packets() {
                let _ = self.flush(); // the alert that says why, if any
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.conn.writer().write_all(data)?;
        self.flush()
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut buf = [0u8; 4096];
        while !self.pending.contains(&b'\n') {
            let n = self.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "close_notify before a full line"));
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
        let end = self.pending.iter().position(|&b| b == b'\n').unwrap();
        let line: Vec<u8> = self.pending.drain(..=end).collect();
        Ok(String::from_utf8_lossy(&line[..end]).into_owned())
    }

    /// Reads until the stream ends and reports how: close_notify, eof (no close_notify), reset or an error.
    fn end(&mut self, id: &str) -> String {
        let mut buf = [0u8; 16384];
        let mut data = self.pending.len();
        self.pending.clear();
        let verdict = loop {
            match self.read(&mut buf) {
                Ok(0) => break "close_notify".to_string(),
                Ok(n) => data += n,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break "eof".to_string(),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break "reset".to_string(),
                Err(e) => break format!("error:{}", e.to_string().replace(' ', "_")),
            }
        };
        out(id, "data-before-end", &data.to_string());
        out(id, "raw-end", if self.raw.at_boundary() { "boundary" } else { "inside-record" });
        out(id, "raw-records", &self.raw.records.to_string());
        out(id, "raw-last-record-type", &self.raw.last_type.to_string());
        out(id, "peer-end", &verdict);
        verdict
    }

    fn protocol(&self) -> String {
        match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            other => format!("{:?}", other),
        }
    }

    /// Plays `scenario` once the HELLO/OK exchange is over.
    fn play(&mut self, id: &str, scenario: &str) -> io::Result<()> {
        match scenario {
            "await-close" => {
                if self.end(id) == "close_notify" {
                    self.conn.send_close_notify();
                    self.flush()?;
                    out(id, "sent", "close_notify");
                }
            }
            "close-notify" => {
                self.conn.send_close_notify();
                self.flush()?;
                out(id, "sent", "close_notify");
                self.end(id);
            }
            "close" => {
                self.conn.send_close_notify();
                self.flush()?;
                out(id, "sent", "close_notify");
            }
            "drop" => {
                self.sock.shutdown(Shutdown::Write)?;
                out(id, "sent", "fin");
                self.end(id);
            }
            other => return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("unknown scenario {}", other))),
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------------------------------

fn serve_one(sock: TcpStream, config: Arc<ServerConfig>) -> io::Result<()> {
    sock.set_read_timeout(Some(TIMEOUT))?;
    sock.set_write_timeout(Some(TIMEOUT))?;
    let conn = ServerConnection::new(config).map_err(|e| io::Error::new(io::ErrorKind::Other, e))?;
    let mut peer = Peer { conn: Connection::from(conn), sock: &sock, raw: RecordingReader::new(&sock), pending: Vec::new() };
    peer.handshake()?;
    let hello = peer.read_line()?;
    let words: Vec<&str> = hello.split(' ').collect();
    if words.len() != 3 || words[0] != "HELLO" {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("not a HELLO line: {}", hello)));
    }
    let (id, scenario) = (words[1], words[2]);
    out(id, "scenario", scenario);
    out(id, "protocol", &peer.protocol());
    peer.write_all(format!("OK {}\n", id).as_bytes())?;
    if let Err(e) = peer.play(id, scenario) {
        out(id, "error", &e.to_string().replace(' ', "_"));
    }
    out(id, "done", "1");
    Ok(())
}

fn run_server(args: &Args) -> io::Result<()> {
    let certs = pem_blocks(&args.get("--cert"), "CERTIFICATE").into_iter().map(Certificate).collect();
    let key = pem_blocks(&args.get("--key"), "PRIVATE KEY").into_iter().next().expect("no private key");
    let config = ServerConfig::builder()
        .with_safe_defaults()
        .with_no_client_auth()
        .with_single_cert(certs, PrivateKey(key))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let config = Arc::new(config);
    let listener = TcpListener::bind(("127.0.0.1", args.get("--port").parse::<u16>().expect("--port")))?;
    eprintln!("listening on {}", listener.local_addr()?);
    for sock in listener.incoming() {
        let sock = sock?;
        let config = config.clone();
        std::thread::spawn(move || {
            if let Err(e) = serve_one(sock, config) {
                // a probe connection, or a peer gone: report and serve the next one
                eprintln!("- connection failed: {}", e);
            }
        });
    }
    Ok(())
}

fn run_client(args: &Args) -> io::Result<()> {
    let id = args.get("--id");
    let scenario = args.get("--scenario");
    let mut roots = RootCertStore::empty();
    for der in pem_blocks(&args.get("--ca"), "CERTIFICATE") {
        roots.add(&Certificate(der)).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{:?}", e)))?;
    }
    let version = match args.get("--protocol").as_str() {
        "TLSv1.2" => &rustls::version::TLS12,
        "TLSv1.3" => &rustls::version::TLS13,
        other => panic!("unknown protocol {}", other),
    };
    let config = ClientConfig::builder()
        .with_safe_default_cipher_suites()
        .with_safe_default_kx_groups()
        .with_protocol_versions(&[version])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("server name");
    let conn = ClientConnection::new(Arc::new(config), name).map_err(|e| io::Error::new(io::ErrorKind::Other, e))?;
    let sock = TcpStream::connect(("127.0.0.1", args.get("--port").parse::<u16>().expect("--port")))?;
    sock.set_read_timeout(Some(TIMEOUT))?;
    sock.set_write_timeout(Some(TIMEOUT))?;
    let mut peer = Peer { conn: Connection::from(conn), sock: &sock, raw: RecordingReader::new(&sock), pending: Vec::new() };
    out(&id, "scenario", &scenario);
    peer.handshake()?;
    out(&id, "protocol", &peer.protocol());
    peer.write_all(format!("HELLO {} {}\n", id, scenario).as_bytes())?;
    let ok = peer.read_line()?;
    out(&id, "ok", if ok == format!("OK {}", id) { "1" } else { "0" });
    peer.play(&id, &scenario)?;
    out(&id, "done", "1");
    Ok(())
}

struct Args(Vec<String>);

impl Args {
    fn get(&self, name: &str) -> String {
        self.0.iter().position(|a| a == name).and_then(|i| self.0.get(i + 1)).cloned()
            .unwrap_or_else(|| panic!("missing argument {}", name))
    }
}

fn main() {
    let args = Args(std::env::args().collect());
    let result = match args.0.get(1).map(String::as_str) {
        Some("server") => run_server(&args),
        Some("client") => run_client(&args),
        _ => {
            eprintln!("usage: rustls-peer server|client --port P ...");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("rustls-peer: {}", e);
        std::process::exit(1);
    }
}
