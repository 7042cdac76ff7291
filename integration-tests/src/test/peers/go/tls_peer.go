// Command tls_peer is a TLS peer built on Go's crypto/tls for the interop tests of graceful-tls-close (GoPeerTest).
// It speaks the same command line and the same stdout lines as the rustls peer (../rustls/src/main.rs):
//
//	tls_peer server --port P --cert CERT --key KEY
//	tls_peer client --port P --ca CA --protocol TLSv1.2|TLSv1.3 --scenario NAME --id ID
//
// The client sends "HELLO <id> <scenario>\n", the server answers "OK <id>\n"; then each side plays the scenario.
// What the peer saw is printed as "<id> <key>=<value>" lines, ending with "<id> done=1".
//
// Scenarios (what this peer does once the HELLO/OK exchange is over):
//
//	await-close   reads until the stream ends and reports how (peer-end); after a close_notify it replies with
//	              its own and closes (Conn.Close)
//	close-notify  sends close_notify (Conn.CloseWrite: TLS only, the TCP stays open), keeps reading, reports how
//	              our side ended
//	close         Conn.Close: close_notify, then the socket closes at once
//	drop          shuts the TCP output down (FIN) without close_notify, keeps reading, reports how our side ended
//
// How the verdict is reached. Conn.Read returns io.EOF both after the peer's close_notify and after a bare FIN at a
// record boundary (inside a record it returns io.ErrUnexpectedEOF), so Read's error alone cannot tell a clean end
// from a truncation. The TCP connection is wrapped (rawConn) to watch what crypto/tls reads from it:
//
//   - crypto/tls reads from the socket only while it lacks bytes of the record at hand (each socket Read may return
//     more, into its buffer), and a socket Read returns data without io.EOF; the socket's own end of stream (its
//     Read returning 0, io.EOF) is seen only by a Read issued for a record not yet complete or not yet begun.
//     A close_notify ends Read with io.EOF without such a Read: crypto/tls reads nothing after the alert.
//     A bare FIN ends Read with io.EOF only after the socket's Read returned io.EOF.
//   - So: Read returned io.EOF and the socket had not returned io.EOF (nor any error) -> close_notify;
//     the socket had returned io.EOF -> eof (a truncation); a reset -> reset.
//   - Cross-check, reported alongside: the raw bytes are split into records; after a close_notify the stream must
//     have ended on a record boundary and the last record must be an alert (type 21) in TLS 1.2, or an encrypted
//     record (type 23, the alert is inside) in TLS 1.3. A contradiction is reported as peer-end=inconsistent.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

const timeout = 30 * time.Second

var stdout sync.Mutex

func out(id, key string, value interface{}) {
	stdout.Lock()
	defer stdout.Unlock()
	fmt.Printf("%s %s=%v\n", id, key, value)
}

// rawConn is the TCP connection under crypto/tls: it splits what is read into records and remembers how the
// socket's own stream ended.
type rawConn struct {
	*net.TCPConn
	mu        sync.Mutex
	header    [5]byte
	headerLen int
	bodyLeft  int
	inBody    bool
	records   int
	lastType  byte
	eof       bool  // the socket's Read returned io.EOF
	err       error // the socket's Read failed otherwise
}

func (r *rawConn) Read(p []byte) (int, error) {
	n, err := r.TCPConn.Read(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.feed(p[:n])
	if err == io.EOF {
		r.eof = true
	} else if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

func (r *rawConn) feed(b []byte) {
	for len(b) > 0 {
		if !r.inBody {
			take := copy(r.header[r.headerLen:], b)
			r.headerLen += take
			b = b[take:]
			if r.headerLen == 5 {
				r.headerLen = 0
				r.bodyLeft = int(r.header[3])<<8 | int(r.header[4])
				r.inBody = true
			}
		} else {
			take := r.bodyLeft
			if take > len(b) {
				take = len(b)
			}
			r.bodyLeft -= take
			b = b[take:]
		}
		if r.inBody && r.bodyLeft == 0 {
			r.inBody = false
			r.records++
			r.lastType = r.header[0]
		}
	}
}

type peer struct {
	tls     *tls.Conn
	raw     *rawConn
	pending []byte // application data read but not yet consumed by readLine
}

// readLine returns the next line of application data. Conn.Read may return data and io.EOF together: in TLS 1.2, when
// a close_notify record follows the data in what was read, it consumes the alert at once and returns (n, io.EOF).
// The line in that data still counts; the error is sticky in crypto/tls, so end() sees it again.
func (p *peer) readLine() (string, error) {
	buf := make([]byte, 4096)
	var err error
	for {
		if i := strings.IndexByte(string(p.pending), '\n'); i >= 0 {
			line := string(p.pending[:i])
			p.pending = p.pending[i+1:]
			return line, nil
		}
		if err != nil {
			return "", fmt.Errorf("before a full line: %w", err)
		}
		var n int
		n, err = p.tls.Read(buf)
		p.pending = append(p.pending, buf[:n]...)
	}
}

// end reads until the stream ends and reports how: close_notify, eof (no close_notify), reset or an error.
func (p *peer) end(id string) string {
	buf := make([]byte, 16384)
	data := len(p.pending)
	p.pending = nil
	var err error
	for err == nil {
		var n int
		n, err = p.tls.Read(buf)
		data += n
	}
	p.raw.mu.Lock()
	rawEOF, rawErr, boundary := p.raw.eof, p.raw.err, !p.raw.inBody && p.raw.headerLen == 0
	records, lastType := p.raw.records, p.raw.lastType
	p.raw.mu.Unlock()
	var verdict string
	switch {
	case rawErr != nil && errors.Is(rawErr, syscall.ECONNRESET):
		verdict = "reset"
	case err == io.EOF && !rawEOF && rawErr == nil:
		alertType := byte(21)
		if p.tls.ConnectionState().Version == tls.VersionTLS13 {
			alertType = 23
		}
		if boundary && lastType == alertType {
			verdict = "close_notify"
		} else {
			verdict = "inconsistent"
		}
	case (err == io.EOF || err == io.ErrUnexpectedEOF) && rawEOF:
		verdict = "eof"
	default:
		verdict = "error:" + strings.ReplaceAll(err.Error(), " ", "_")
	}
	out(id, "data-before-end", data)
	out(id, "read-error", strings.ReplaceAll(fmt.Sprint(err), " ", "_"))
	out(id, "raw-eof", rawEOF)
	if boundary {
		out(id, "raw-end", "boundary")
	} else {
		out(id, "raw-end", "inside-record")
	}
	out(id, "raw-records", records)
	out(id, "raw-last-record-type", lastType)
	out(id, "peer-end", verdict)
	return verdict
}

func protocol(c *tls.Conn) string {
	switch c.ConnectionState().Version {
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("0x%04x", c.ConnectionState().Version)
}

// play runs scenario once the HELLO/OK exchange is over.
func (p *peer) play(id, scenario string) error {
	switch scenario {
	case "await-close":
		if p.end(id) == "close_notify" {
			if err := p.tls.Close(); err != nil {
				return err
			}
			out(id, "sent", "close_notify")
		}
	case "close-notify":
		if err := p.tls.CloseWrite(); err != nil {
			return err
		}
		out(id, "sent", "close_notify")
		p.end(id)
	case "close":
		if err := p.tls.Close(); err != nil {
			return err
		}
		out(id, "sent", "close_notify")
	case "drop":
		if err := p.raw.CloseWrite(); err != nil {
			return err
		}
		out(id, "sent", "fin")
		p.end(id)
	default:
		return fmt.Errorf("unknown scenario %q", scenario)
	}
	return nil
}

func serveOne(c *net.TCPConn, config *tls.Config) error {
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	raw := &rawConn{TCPConn: c}
	p := &peer{tls: tls.Server(raw, config), raw: raw}
	if err := p.tls.Handshake(); err != nil {
		return err
	}
	hello, err := p.readLine()
	if err != nil {
		return err
	}
	words := strings.Split(hello, " ")
	if len(words) != 3 || words[0] != "HELLO" {
		return fmt.Errorf("not a HELLO line: %q", hello)
	}
	id, scenario := words[1], words[2]
	out(id, "scenario", scenario)
	out(id, "protocol", protocol(p.tls))
	if _, err := p.tls.Write([]byte("OK " + id + "\n")); err != nil {
		return err
	}
	if err := p.play(id, scenario); err != nil {
		out(id, "error", strings.ReplaceAll(err.Error(), " ", "_"))
	}
	out(id, "done", 1)
	return nil
}

func runServer(port int, certFile, keyFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	config := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	listener, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "listening on %s\n", listener.Addr())
	for {
		c, err := listener.AcceptTCP()
		if err != nil {
			return err
		}
		go func() {
			if err := serveOne(c, config); err != nil {
				// a probe connection, or a peer gone: report and serve the next one
				fmt.Fprintf(os.Stderr, "- connection failed: %v\n", err)
			}
		}()
	}
}

func runClient(port int, caFile, protocolName, scenario, id string) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("no certificate in %s", caFile)
	}
	version := map[string]uint16{"TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13}[protocolName]
	if version == 0 {
		return fmt.Errorf("unknown protocol %q", protocolName)
	}
	config := &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: version, MaxVersion: version}
	c, err := net.DialTCP("tcp", nil, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	raw := &rawConn{TCPConn: c}
	p := &peer{tls: tls.Client(raw, config), raw: raw}
	out(id, "scenario", scenario)
	if err := p.tls.Handshake(); err != nil {
		return err
	}
	out(id, "protocol", protocol(p.tls))
	if _, err := p.tls.Write([]byte("HELLO " + id + " " + scenario + "\n")); err != nil {
		return err
	}
	ok, err := p.readLine()
	if err != nil {
		return err
	}
	if ok == "OK "+id {
		out(id, "ok", 1)
	} else {
		out(id, "ok", 0)
	}
	if err := p.play(id, scenario); err != nil {
		return err
	}
	out(id, "done", 1)
	return nil
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "server" && os.Args[1] != "client") {
		fmt.Fprintln(os.Stderr, "usage: tls_peer server|client --port P ...")
		os.Exit(2)
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	port := flags.Int("port", 0, "TCP port on 127.0.0.1")
	certFile := flags.String("cert", "", "server certificate chain (PEM)")
	keyFile := flags.String("key", "", "server private key (PEM)")
	caFile := flags.String("ca", "", "CA certificate the client trusts (PEM)")
	protocolName := flags.String("protocol", "TLSv1.3", "TLSv1.2 or TLSv1.3 (client)")
	scenario := flags.String("scenario", "", "what the client does (client)")
	id := flags.String("id", "c", "connection id in the output (client)")
	flags.Parse(os.Args[2:])
	var err error
	if os.Args[1] == "server" {
		err = runServer(*port, *certFile, *keyFile)
	} else {
		err = runClient(*port, *caFile, *protocolName, *scenario, *id)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tls_peer: %v\n", err)
		os.Exit(1)
	}
}
