package transporturl

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// smtpServer is a tiny SMTP server with STARTTLS: a 220 greeting, EHLO,
// STARTTLS (220, then tls.Server on the same connection), NOOP, QUIT, and
// STOPTLS (not SMTP: the answer, then close_notify both ways and plaintext
// right behind it). With inject, the STARTTLS answer has a second line
// behind it, as an attacker in the middle would add.
func smtpServer(t *testing.T, p *pki, inject bool) *server {
	return newServer(t, listenTCP(t), func(raw net.Conn) {
		var conn net.Conn = raw
		var tc *tls.Conn
		r := bufio.NewReader(conn)
		say := func(s string) { conn.Write([]byte(s)) }
		say("220 localhost ESMTP transporturl-go-test\r\n")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.ToUpper(strings.TrimSpace(line))
			switch {
			case strings.HasPrefix(cmd, "EHLO"):
				if tc == nil {
					say("250-localhost\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
				} else {
					say("250-localhost\r\n250 PIPELINING\r\n")
				}
			case cmd == "STARTTLS" && tc == nil:
				if inject {
					say("220 2.0.0 Ready to start TLS\r\n250 injected\r\n")
					return
				}
				say("220 2.0.0 Ready to start TLS\r\n")
				if r.Buffered() > 0 {
					say("554 pipelined data before TLS\r\n")
					return
				}
				tc = tls.Server(raw, p.serverConfig())
				if err := tc.Handshake(); err != nil {
					return
				}
				conn, r = tc, bufio.NewReader(tc)
			case cmd == "STOPTLS" && tc != nil:
				say("220 2.0.0 Going back to plaintext\r\n")
				if _, err := r.ReadByte(); err != io.EOF { // the client's close_notify
					return
				}
				tc.CloseWrite() // ours; it also sets the write deadline to now
				raw.SetWriteDeadline(time.Now().Add(testTimeout))
				raw.Write([]byte("250 plaintext again, right behind close_notify\r\n")) // no pause
				tc, conn, r = nil, raw, bufio.NewReader(raw)
			case cmd == "NOOP":
				say("250 2.0.0 OK\r\n")
			case cmd == "QUIT":
				say("221 2.0.0 Bye\r\n")
				if tc != nil {
					tc.Close()
				}
				return
			default:
				say("502 5.5.2 Command not recognized\r\n")
			}
		}
	})
}

// rawLine reads one line a byte at a time, so that nothing behind it is
// taken from the connection.
func rawLine(t *testing.T, c io.Reader) string {
	t.Helper()
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := io.ReadFull(c, one); err != nil {
			t.Fatalf("reading a line: %v (got %q)", err, b)
		}
		if one[0] == '\n' {
			return strings.TrimRight(string(b), "\r")
		}
		b = append(b, one[0])
	}
}

// reply reads an SMTP reply (all its lines) and returns the last.
func reply(t *testing.T, c io.Reader, code string) string {
	t.Helper()
	for {
		line := rawLine(t, c)
		if !strings.HasPrefix(line, code) {
			t.Fatalf("got %q, want a %s reply", line, code)
		}
		if len(line) < 4 || line[3] != '-' {
			return line
		}
	}
}

func send(t *testing.T, c io.Writer, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s + "\r\n")); err != nil {
		t.Fatalf("sending %q: %v", s, err)
	}
}

func TestSTARTTLS(t *testing.T) {
	p := testPKI(t)
	srv := smtpServer(t, p, false)
	c := mustDial(t, addrURL("tcp", srv.port()), WithCAFile(p.caFile))
	c.SetDeadline(time.Now().Add(testTimeout))
	reply(t, c, "220")
	send(t, c, "EHLO client.example")
	if last := reply(t, c, "250"); last != "250 STARTTLS" {
		t.Fatalf("no STARTTLS offered: %q", last)
	}
	send(t, c, "STARTTLS")
	reply(t, c, "220")
	if err := c.EnableCrypto(CryptoAny); err != nil {
		t.Fatalf("EnableCrypto: %v", err)
	}
	if s := c.ConnectionState(); !s.TLS || !s.PeerVerified {
		t.Fatalf("after STARTTLS: %+v", s)
	}
	wantCode(t, c.EnableCrypto(CryptoAny), CodeState, "already")
	send(t, c, "EHLO client.example")
	reply(t, c, "250")
	send(t, c, "NOOP")
	reply(t, c, "250")

	// Back to plaintext: the server's bytes right behind its close_notify
	// must not be lost.
	send(t, c, "STOPTLS")
	reply(t, c, "220")
	if err := c.EnableCrypto(CryptoNone); err != nil {
		t.Fatalf("EnableCrypto(CryptoNone): %v", err)
	}
	if s := c.ConnectionState(); s.TLS {
		t.Fatalf("still TLS: %+v", s)
	}

	if line := rawLine(t, c); !strings.HasPrefix(line, "250 plaintext again") {
		t.Fatalf("after TLS off: %q", line)
	}
	send(t, c, "NOOP")
	reply(t, c, "250")
	send(t, c, "QUIT")
	reply(t, c, "221")
}

func TestSTARTTLSInjection(t *testing.T) {
	p := testPKI(t)
	srv := smtpServer(t, p, true)
	c := mustDial(t, addrURL("tcp", srv.port()), WithCAFile(p.caFile))
	c.SetDeadline(time.Now().Add(testTimeout))
	reply(t, c, "220")
	send(t, c, "STARTTLS")
	reply(t, c, "220")
	time.Sleep(50 * time.Millisecond) // let the injected line arrive
	err := c.EnableCrypto(CryptoAny)
	wantCode(t, err, CodeProtocol, "injected")
}

func TestSTARTTLSWrongName(t *testing.T) {
	p := testPKI(t)
	srv := smtpServer(t, p, false)
	c := mustDial(t, addrURL("tcp", srv.port()), WithCAFile(p.caFile), WithPeerName("mail.example.org"))
	c.SetDeadline(time.Now().Add(testTimeout))
	reply(t, c, "220")
	send(t, c, "STARTTLS")
	reply(t, c, "220")
	wantCode(t, c.EnableCrypto(CryptoAny), CodeCertificate, "mail.example.org")
}

// EnableCrypto refuses to run under a pending Read instead of waiting for
// a Read that may never end.
func TestEnableCryptoDuringRead(t *testing.T) {
	srv := silentServer(t)
	c := mustDial(t, addrURL("tcp", srv.port()))
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	wantCode(t, c.EnableCrypto(CryptoAny), CodeState, "Read")
	c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read: %v", err)
	}
}

// A STARTTLS handshake with a peer that never answers is bounded by the
// deadlines.
func TestEnableCryptoDeadline(t *testing.T) {
	srv := silentServer(t)
	c := mustDial(t, addrURL("tcp", srv.port()))
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	var err error
	within(t, 5*time.Second, "EnableCrypto against a silent peer", func() { err = c.EnableCrypto(CryptoAny) })
	wantCode(t, err, CodeTimeout, "deadline")
}
