package transporturl

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestTLSEcho(t *testing.T) {
	p := testPKI(t)
	srv := echoServer(t, p.serverConfig())
	c := mustDial(t, addrURL("tls", srv.port()), WithCAFile(p.caFile))
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Write([]byte("secret")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "secret" {
		t.Fatalf("%q, %v", buf, err)
	}
	s := c.ConnectionState()
	if !s.TLS || s.Version != "TLSv1.3" || s.CipherSuite == "" || !s.PeerVerified {
		t.Errorf("ConnectionState %+v", s)
	}
	if s.ServerName != "" {
		t.Errorf("SNI %q sent for an IP address", s.ServerName)
	}
}

func TestTLSHostName(t *testing.T) {
	p := testPKI(t)
	sniSeen := make(chan string, 1)
	cfg := p.serverConfig()
	cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		sniSeen <- h.ServerName
		return nil, nil
	}
	srv := echoServer(t, cfg)
	c := mustDial(t, "tls://localhost:"+itoaPort(srv.port()), WithCAFile(p.caFile))
	c.SetDeadline(time.Now().Add(testTimeout))
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	if s, sni := c.ConnectionState(), <-sniSeen; s.ServerName != "localhost" || sni != "localhost" {
		t.Errorf("SNI: state %q, server saw %q", s.ServerName, sni)
	}
}

func TestTLSVersions(t *testing.T) {
	p := testPKI(t)
	srv := echoServer(t, p.serverConfig())
	for scheme, want := range map[string]string{"tlsv1.2": "TLSv1.2", "tlsv1.3": "TLSv1.3", "ssl": "TLSv1.3"} {
		c := mustDial(t, addrURL(scheme, srv.port()), WithCAFile(p.caFile))
		if got := c.ConnectionState().Version; got != want {
			t.Errorf("%s: version %q, want %q", scheme, got, want)
		}
		c.Close()
	}
}

// TestTLSIOCopy moves 4 MiB each way with io.Copy: the client writes it all
// (Write waits for nothing to be left inside the library), the server
// answers with it and closes with close_notify, and io.Copy reads to EOF.
func TestTLSIOCopy(t *testing.T) {
	p := testPKI(t)
	const size = 4 << 20
	ln := tls.NewListener(listenTCP(t), p.serverConfig())
	srv := newServer(t, ln, func(c net.Conn) {
		var buf bytes.Buffer
		if _, err := io.CopyN(&buf, c, size); err != nil {
			t.Errorf("server read: %v", err)
			return
		}
		if _, err := io.Copy(c, &buf); err != nil {
			t.Errorf("server write: %v", err)
		}
		c.Close() // close_notify
	})
	c := mustDial(t, addrURL("tls", srv.port()), WithCAFile(p.caFile))
	c.SetDeadline(time.Now().Add(testTimeout))
	data := bytes.Repeat([]byte("transporturl "), size/13+1)[:size]
	if n, err := io.Copy(c, bytes.NewReader(data)); err != nil || n != size {
		t.Fatalf("io.Copy to the Conn: %d, %v", n, err)
	}
	var back bytes.Buffer
	if n, err := io.Copy(&back, c); err != nil || n != size {
		t.Fatalf("io.Copy from the Conn: %d, %v", n, err)
	}
	if !bytes.Equal(back.Bytes(), data) {
		t.Fatal("data differs")
	}
}

// TestTLSBigWriteThenRead sends a request larger than the socket buffers to
// a server that reads it all before answering: the last records must not
// stay queued inside the library once Write has returned.
func TestTLSBigWriteThenRead(t *testing.T) {
	p := testPKI(t)
	const size = 8 << 20
	ln := tls.NewListener(listenTCP(t), p.serverConfig())
	srv := newServer(t, ln, func(c net.Conn) {
		time.Sleep(50 * time.Millisecond) // let the client's buffers fill
		h := sha256.New()
		if _, err := io.CopyN(h, c, size); err != nil {
			t.Errorf("server read: %v", err)
			return
		}
		c.Write(h.Sum(nil))
	})
	c := mustDial(t, addrURL("tls", srv.port()), WithCAFile(p.caFile))
	c.SetDeadline(time.Now().Add(testTimeout))
	data := bytes.Repeat([]byte{0xA5, 0x5A, 0x00, 0xFF}, size/4)
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	sum := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, sum); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	want := sha256.Sum256(data)
	if !bytes.Equal(sum, want[:]) {
		t.Fatal("the server hashed other data")
	}
}

func TestTLSConcurrentReadWrite(t *testing.T) {
	p := testPKI(t)
	srv := echoServer(t, p.serverConfig())
	c := mustDial(t, addrURL("tls", srv.port()), WithCAFile(p.caFile))
	fullDuplex(t, c, 8<<20)
}

func TestTLSReadDeadline(t *testing.T) {
	p := testPKI(t)
	srv := echoServer(t, p.serverConfig())
	c := mustDial(t, addrURL("tls", srv.port()), WithCAFile(p.caFile))
	start := time.Now()
	c.SetReadDeadline(start.Add(200 * time.Millisecond))
	_, err := c.Read(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if took := time.Since(start); took < 150*time.Millisecond || took > 5*time.Second {
		t.Fatalf("took %v", took)
	}
	c.SetReadDeadline(time.Time{})
	c.Write([]byte("still fine"))
	buf := make([]byte, 10)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "still fine" {
		t.Fatalf("after the timeout: %q, %v", buf, err)
	}
}

func TestTLSCloseDuringRead(t *testing.T) {
	p := testPKI(t)
	srv := echoServer(t, p.serverConfig())
	c := mustDial(t, addrURL("tls", srv.port()), WithCAFile(p.caFile))
	time.AfterFunc(100*time.Millisecond, func() { c.Close() })
	within(t, 5*time.Second, "a TLS Read pending during Close", func() {
		if _, err := c.Read(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("got %v", err)
		}
	})
}

func TestTLSUnknownIssuer(t *testing.T) {
	p := testPKI(t)
	srv := echoServer(t, p.serverConfig())
	_, err := Dial(addrURL("tls", srv.port()), WithTimeout(testTimeout))
	wantCode(t, err, CodeCertificate, "issuer")
}

func TestTLSNameMismatch(t *testing.T) {
	p := testPKI(t)
	srv := echoServer(t, p.serverConfig())
	_, err := Dial(addrURL("tls", srv.port()), WithTimeout(testTimeout), WithCAFile(p.caFile), WithPeerName("example.com"))
	wantCode(t, err, CodeCertificate, "example.com")
}

func TestTLSVerifyOff(t *testing.T) {
	p := testPKI(t)
	srv := echoServer(t, p.serverConfig())
	c := mustDial(t, addrURL("tls", srv.port()), WithVerifyPeer(false))
	if s := c.ConnectionState(); !s.TLS || s.PeerVerified {
		t.Errorf("verification off: %+v", s)
	}
}

func TestTLSPlaintextPeer(t *testing.T) {
	srv := newServer(t, listenTCP(t), func(c net.Conn) {
		c.Write([]byte("220 mail.example.com ESMTP ready\r\n"))
		io.Copy(io.Discard, c)
	})
	_, err := Dial(addrURL("tls", srv.port()), WithTimeout(testTimeout))
	wantCode(t, err, CodePlaintextPeer, "220")
}

func TestTLSTruncated(t *testing.T) {
	p := testPKI(t)
	ln := listenTCP(t)
	srv := newServer(t, ln, func(raw net.Conn) {
		c := tls.Server(raw, p.serverConfig())
		if err := c.Handshake(); err != nil {
			return
		}
		c.Write([]byte("partial"))
		time.Sleep(50 * time.Millisecond)
		raw.Close() // no close_notify
	})
	c := mustDial(t, addrURL("tls", srv.port()), WithCAFile(p.caFile))
	c.SetDeadline(time.Now().Add(testTimeout))
	got, err := io.ReadAll(c)
	if string(got) != "partial" {
		t.Errorf("read %q before the end", got)
	}
	wantCode(t, err, CodeTruncated, "close_notify")
}

func TestTLSALPN(t *testing.T) {
	p := testPKI(t)
	cfg := p.serverConfig()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	srv := echoServer(t, cfg)
	c, err := Dial(addrURL("tls", srv.port()), WithTimeout(testTimeout), WithCAFile(p.caFile), WithALPN("http/1.1"))
	if errors.Is(err, CodeInvalidArgument) && strings.Contains(err.Error(), "ssl.alpn_protocols") {
		t.Skipf("the library does not take ssl.alpn_protocols yet: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.ConnectionState().ALPN; got != "http/1.1" {
		t.Errorf("ALPN %q", got)
	}
}

func TestTLSPeerCertificates(t *testing.T) {
	p := testPKI(t)
	srv := echoServer(t, p.serverConfig())
	c, err := Dial(addrURL("tls", srv.port()), WithTimeout(testTimeout), WithCAFile(p.caFile), WithOption("ssl.capture_peer_cert", "true"))
	if errors.Is(err, CodeInvalidArgument) && strings.Contains(err.Error(), "ssl.capture_peer_cert") {
		t.Skipf("the library does not take ssl.capture_peer_cert yet: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	certs, err := c.PeerCertificates()
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 || !bytes.Equal(certs[0].Raw, p.leaf.Certificate[0]) {
		t.Fatalf("got %d certificates", len(certs))
	}
	// Without the option: CodeState.
	c2 := mustDial(t, addrURL("tls", srv.port()), WithCAFile(p.caFile))
	_, err = c2.PeerCertificates()
	wantCode(t, err, CodeState, "capture_peer_cert")
}

func TestEnableCryptoOnUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c := mustDial(t, addrURL("udp", pc.LocalAddr().(*net.UDPAddr).Port))
	wantCode(t, c.EnableCrypto(CryptoAny), CodeState, "datagram")
	wantCode(t, c.EnableCrypto(CryptoSSLv3), CodeInsecureProtocol, "SSLv3")
}

// A second connection with the same options resumes the session (TLS 1.3
// ticket), and ConnectionState says so.
func TestTLSResumption(t *testing.T) {
	p := testPKI(t)
	srv := echoServer(t, p.serverConfig())
	var states []ConnectionState
	for i := 0; i < 2; i++ {
		c := mustDial(t, addrURL("tls", srv.port()), WithCAFile(p.caFile))
		c.SetDeadline(time.Now().Add(testTimeout))
		// A round trip, so that the server's ticket has arrived.
		c.Write([]byte("t"))
		io.ReadFull(c, make([]byte, 1))
		states = append(states, c.ConnectionState())
		c.Close()
	}
	if states[0].Resumed || states[0].Group == "" {
		t.Errorf("first connection: %+v", states[0])
	}
	if !states[1].Resumed {
		t.Errorf("second connection not resumed: %+v", states[1])
	}
}

func TestTLSClientCertificate(t *testing.T) {
	p := testPKI(t)
	cfg := p.serverConfig()
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = p.caPool
	srv := echoServer(t, cfg)
	c := mustDial(t, addrURL("tls", srv.port()), WithCAFile(p.caFile), WithClientCertificate(p.certFile, p.keyFile))
	c.SetDeadline(time.Now().Add(testTimeout))
	c.Write([]byte("mtls"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "mtls" {
		t.Fatalf("%q, %v", buf, err)
	}
	// Without one, the server refuses the connection.
	c2, err := Dial(addrURL("tls", srv.port()), WithTimeout(testTimeout), WithCAFile(p.caFile))
	if err == nil {
		c2.SetDeadline(time.Now().Add(testTimeout))
		_, err = c2.Read(make([]byte, 1))
		c2.Close()
	}
	// TLS 1.3: the client finishes first and hears of the refusal on its
	// first read.
	wantCode(t, err, CodeTLS, "ssl.local_cert")
}

func TestBindTo(t *testing.T) {
	srv := echoServer(t, nil)
	c := mustDial(t, addrURL("tcp", srv.port()), WithBindTo("127.0.0.1:0"))
	if la := c.LocalAddr().(*net.TCPAddr); !la.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("LocalAddr %v", la)
	}
	_, err := Dial(addrURL("tcp", srv.port()), WithBindTo("not an address"))
	wantCode(t, err, CodeInvalidArgument, "socket.bindto")
}

// smallBufListener gives accepted connections a small receive buffer, so
// that what the client writes cannot all sit in the kernel's buffers.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(64 << 10)
	}
	return c, err
}

// pausedHashServer reads nothing for a while, then reads size bytes and
// answers with their SHA-256. While it pauses, the client's socket buffers
// fill up: a non-blocking tu_write then accepts bytes whose encrypted
// records the socket cannot take, and only a flush (tu_flush) sends them.
func pausedHashServer(t *testing.T, p *pki, size int) *server {
	ln := tls.NewListener(smallBufListener{listenTCP(t)}, p.serverConfig())
	return newServer(t, ln, func(c net.Conn) {
		if err := c.(*tls.Conn).Handshake(); err != nil {
			t.Errorf("server handshake: %v", err)
			return
		}
		time.Sleep(150 * time.Millisecond)
		h := sha256.New()
		if n, err := io.CopyN(h, c, int64(size)); err != nil {
			t.Errorf("server read %d of %d bytes: %v", n, size, err)
			return
		}
		if _, err := c.Write(h.Sum(nil)); err != nil {
			t.Errorf("server write: %v", err)
		}
	})
}

// queuedForWrite reports whether tu_wants shows TU_WANT_WRITE: after a TLS
// tu_write (and no read on the handle), records still queued inside.
func (c *Conn) queuedForWrite() bool { return c.wants()&wantWrite != 0 }

// TestTLSWriteLeavesNothingQueued writes 16 KiB at a time, more than the
// socket buffers hold, to a peer that does not read yet: some Write's
// tu_write accepts its bytes while the socket is full, and Write must
// still return only once tu_flush has sent their records (else the peer
// would wait for the end of the request forever).
func TestTLSWriteLeavesNothingQueued(t *testing.T) {
	p := testPKI(t)
	const size, piece = 8 << 20, 16 << 10
	srv := pausedHashServer(t, p, size)
	c := mustDial(t, addrURL("tls", srv.port()), WithCAFile(p.caFile))
	c.SetDeadline(time.Now().Add(testTimeout))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	for off := 0; off < size; off += piece {
		if n, err := c.Write(data[off : off+piece]); err != nil || n != piece {
			t.Fatalf("Write at %d: %d, %v", off, n, err)
		}
		if c.queuedForWrite() {
			t.Fatalf("Write at %d returned with TLS records still queued (tu_wants shows TU_WANT_WRITE)", off)
		}
	}
	sum := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, sum); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if want := sha256.Sum256(data); !bytes.Equal(sum, want[:]) {
		t.Fatal("the server hashed other data")
	}
}

// TestTLSFlushWhileReadPending writes as above while another goroutine
// already waits in Read for the answer: Write's tu_flush (write-side) runs
// and waits for room with the Read pending, and the Read gets the answer.
func TestTLSFlushWhileReadPending(t *testing.T) {
	p := testPKI(t)
	const size, piece = 4 << 20, 16 << 10
	srv := pausedHashServer(t, p, size)
	c := mustDial(t, addrURL("tls", srv.port()), WithCAFile(p.caFile))
	c.SetDeadline(time.Now().Add(testTimeout))
	sum := make([]byte, sha256.Size)
	readDone := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(c, sum)
		readDone <- err
	}()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*31 + i>>13)
	}
	within(t, testTimeout, "TLS Writes with a Read pending", func() {
		for off := 0; off < size; off += piece {
			if n, err := c.Write(data[off : off+piece]); err != nil || n != piece {
				t.Errorf("Write at %d: %d, %v", off, n, err)
				return
			}
		}
	})
	select {
	case err := <-readDone:
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("the pending Read got no answer")
	}
	if want := sha256.Sum256(data); !bytes.Equal(sum, want[:]) {
		t.Fatal("the server hashed other data")
	}
}

// TestTLSWriteDeadline: a TLS peer that never reads. Write waits for room
// (in its tu_writes, or in the flush of the records queued inside) only
// until the write deadline: one big Write, then small ones, which come to
// a full socket with their records still to send.
func TestTLSWriteDeadline(t *testing.T) {
	p := testPKI(t)
	block := make(chan struct{})
	ln := tls.NewListener(listenTCP(t), p.serverConfig())
	srv := newServer(t, ln, func(c net.Conn) {
		c.(*tls.Conn).Handshake()
		<-block
	})
	defer close(block)
	c := mustDial(t, addrURL("tls", srv.port()), WithCAFile(p.caFile))
	for _, size := range []int{64 << 20, 16 << 10} {
		start := time.Now()
		c.SetWriteDeadline(start.Add(300 * time.Millisecond))
		var err error
		within(t, 10*time.Second, "TLS Writes to a peer that does not read", func() {
			for range 64 << 20 / size {
				if _, err = c.Write(make([]byte, size)); err != nil {
					return
				}
			}
		})
		wantCode(t, err, CodeTimeout, "deadline")
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%d-byte Writes: %v does not match os.ErrDeadlineExceeded", size, err)
		}
		if took := time.Since(start); took < 250*time.Millisecond {
			t.Fatalf("%d-byte Writes: gave up after %v, before the deadline", size, took)
		}
	}
}
