package transporturl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestDialTCPEcho(t *testing.T) {
	srv := echoServer(t, nil)
	c := mustDial(t, addrURL("tcp", srv.port()))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	ra, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok || ra.Port != srv.port() || !ra.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("RemoteAddr %v", c.RemoteAddr())
	}
	if la, ok := c.LocalAddr().(*net.TCPAddr); !ok || la.Port == 0 {
		t.Errorf("LocalAddr %v", c.LocalAddr())
	}
	if s := c.ConnectionState(); s.TLS {
		t.Errorf("plain TCP reports TLS: %+v", s)
	}
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v", n, err)
	}
}

func TestDialIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := newServer(t, ln, func(c net.Conn) { io.Copy(c, c) })
	c := mustDial(t, "tcp://[::1]:"+itoaPort(srv.port()))
	if _, err := c.Write([]byte("six")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "six" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if ra := c.RemoteAddr().(*net.TCPAddr); !ra.IP.Equal(net.IPv6loopback) {
		t.Errorf("RemoteAddr %v", ra)
	}
}

func itoaPort(p int) string { return strings.TrimPrefix(addrURL("", p), "://127.0.0.1:") }

func TestDialRefused(t *testing.T) {
	ln := listenTCP(t)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	_, err := Dial(addrURL("tcp", port), WithTimeout(testTimeout))
	wantCode(t, err, CodeRefused, "refused")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%v does not match syscall.ECONNREFUSED", err)
	}
	var e *Error
	errors.As(err, &e)
	if e.Op != "dial" || e.Timeout() {
		t.Errorf("Op %q Timeout %v", e.Op, e.Timeout())
	}
}

func TestDialURLErrors(t *testing.T) {
	_, err := Dial("tcp://127.0.0.1:65536")
	wantCode(t, err, CodeURL, "offset 15")
	_, err = Dial("tcp://127.0.0.1")
	wantCode(t, err, CodeURL, "port")
	_, err = Dial("sslv3://127.0.0.1:443")
	wantCode(t, err, CodeInsecureProtocol, "tls://")
	_, err = Dial("gopher://127.0.0.1:70")
	wantCode(t, err, CodeUnsupportedTransport, "gopher")
}

func TestNULBytesRejected(t *testing.T) {
	_, err := Dial("tcp://127.0.0.1:1\x00")
	wantCode(t, err, CodeInvalidArgument, "NUL byte at offset 17")
	_, err = Dial("tcp://127.0.0.1:1", WithOption("timeout\x00x", "1"))
	wantCode(t, err, CodeInvalidArgument, "NUL byte")
	_, err = Dial("tcp://127.0.0.1:1", WithPeerName("localhost\x00.evil.example"))
	wantCode(t, err, CodeInvalidArgument, "NUL byte at offset 9")
	_, err = DialHost("127.0.0.1\x00", 1)
	wantCode(t, err, CodeInvalidArgument, "NUL byte")
}

func TestOptionErrors(t *testing.T) {
	_, err := Dial("tcp://127.0.0.1:1", WithOption("ssl.no_such_key", "1"))
	wantCode(t, err, CodeInvalidArgument, "ssl.no_such_key")
	_, err = Dial("tcp://127.0.0.1:1", WithTimeout(0))
	wantCode(t, err, CodeInvalidArgument, "timeout")
	_, err = Dial("tcp://127.0.0.1:1", WithCAFile(filepath.Join(t.TempDir(), "missing.pem")))
	wantCode(t, err, CodeInvalidArgument, "ssl.cafile")
	_, err = Dial("tcp://127.0.0.1:1", WithOptions(map[string]string{"ssl.verify_peer": "maybe"}))
	wantCode(t, err, CodeInvalidArgument, "ssl.verify_peer")
}

func TestReadDeadline(t *testing.T) {
	srv := echoServer(t, nil)
	c := mustDial(t, addrURL("tcp", srv.port()))
	buf := make([]byte, 16)

	start := time.Now()
	c.SetReadDeadline(start.Add(200 * time.Millisecond))
	n, err := c.Read(buf)
	took := time.Since(start)
	if n != 0 {
		t.Fatalf("read %d bytes from a silent peer", n)
	}
	wantCode(t, err, CodeTimeout, "deadline")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%v does not match os.ErrDeadlineExceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%v is not a net.Error timeout", err)
	}
	if took < 150*time.Millisecond || took > 5*time.Second {
		t.Fatalf("timed out after %v, want about 200ms", took)
	}

	// A deadline in the past fails at once; clearing it makes the Conn usable.
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("past deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	c.Write([]byte("again"))
	if _, err := io.ReadFull(c, buf[:5]); err != nil || string(buf[:5]) != "again" {
		t.Fatalf("after the timeout: %q, %v", buf[:5], err)
	}
}

func TestDeadlineMovesPendingRead(t *testing.T) {
	srv := silentServer(t)
	c := mustDial(t, addrURL("tcp", srv.port()))
	time.AfterFunc(100*time.Millisecond, func() { c.SetReadDeadline(time.Now()) })
	within(t, 5*time.Second, "a pending Read after SetReadDeadline", func() {
		_, err := c.Read(make([]byte, 1))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("pending Read: %v", err)
		}
	})
}

func TestWriteDeadline(t *testing.T) {
	// A peer that never reads: the socket buffers fill and Write waits.
	block := make(chan struct{})
	srv := newServer(t, listenTCP(t), func(c net.Conn) { <-block })
	defer close(block)
	c := mustDial(t, addrURL("tcp", srv.port()))
	c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	big := make([]byte, 64<<20)
	var n int
	var err error
	within(t, 10*time.Second, "a Write to a peer that does not read", func() { n, err = c.Write(big) })
	if n >= len(big) {
		t.Fatal("64 MiB went out to a peer that does not read")
	}
	wantCode(t, err, CodeTimeout, "deadline")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%v does not match os.ErrDeadlineExceeded", err)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	srv := silentServer(t)
	c := mustDial(t, addrURL("tcp", srv.port()))
	time.AfterFunc(100*time.Millisecond, func() { c.Close() })
	within(t, 5*time.Second, "a Read pending during Close", func() {
		n, err := c.Read(make([]byte, 10))
		if n != 0 || !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read during Close: %d, %v", n, err)
		}
	})
}

func TestUseAfterClose(t *testing.T) {
	srv := echoServer(t, nil)
	c := mustDial(t, addrURL("tcp", srv.port()))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	checks := map[string]error{}
	_, checks["Read"] = c.Read(make([]byte, 1))
	_, checks["Write"] = c.Write([]byte("x"))
	checks["SetDeadline"] = c.SetDeadline(time.Now())
	checks["SetReadDeadline"] = c.SetReadDeadline(time.Now())
	checks["SetWriteDeadline"] = c.SetWriteDeadline(time.Now())
	checks["EnableCrypto"] = c.EnableCrypto(CryptoAny)
	checks["CloseWrite"] = c.CloseWrite()
	for name, err := range checks {
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s after Close: %v, want net.ErrClosed", name, err)
		}
	}
	if s := c.ConnectionState(); s.TLS {
		t.Errorf("ConnectionState after Close: %+v", s)
	}
	if c.LocalAddr() == nil || c.RemoteAddr() == nil {
		t.Error("addresses gone after Close")
	}
}

// TestConcurrentReadWrite pushes 8 MiB through an echo server while reading
// it back on another goroutine (full duplex: neither waits for the other).
func TestConcurrentReadWrite(t *testing.T) {
	srv := echoServer(t, nil)
	c := mustDial(t, addrURL("tcp", srv.port()))
	fullDuplex(t, c, 8<<20)
}

func fullDuplex(t *testing.T, c *Conn, size int) {
	t.Helper()
	c.SetDeadline(time.Now().Add(testTimeout))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	want := sha256.Sum256(data)
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for off := 0; off < len(data); off += 100_000 {
			end := min(off+100_000, len(data))
			if _, err := c.Write(data[off:end]); err != nil {
				werr = err
				return
			}
		}
	}()
	h := sha256.New()
	n, rerr := io.CopyN(h, c, int64(size))
	wg.Wait()
	if werr != nil || rerr != nil {
		t.Fatalf("write: %v; read %d bytes: %v", werr, n, rerr)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("echoed data differs")
	}
}

// TestConcurrentUse hammers one Conn from several readers and writers at
// once (net.Conn allows it; the race detector checks the locking).
func TestConcurrentUse(t *testing.T) {
	srv := echoServer(t, nil)
	c := mustDial(t, addrURL("tcp", srv.port()))
	c.SetDeadline(time.Now().Add(testTimeout))
	const writers, each = 4, 200
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := c.Write([]byte("0123456789")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var mu sync.Mutex
	total := 0
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 7)
			for {
				mu.Lock()
				done := total >= writers*each*10
				mu.Unlock()
				if done {
					return
				}
				c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				n, err := c.Read(buf)
				mu.Lock()
				total += n
				mu.Unlock()
				if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Error(err)
					return
				}
			}
		}()
	}
	within(t, testTimeout, "concurrent readers and writers", wg.Wait)
	if total != writers*each*10 {
		t.Fatalf("read %d bytes, want %d", total, writers*each*10)
	}
}

func TestEOF(t *testing.T) {
	srv := newServer(t, listenTCP(t), func(c net.Conn) { c.Write([]byte("bye")) })
	c := mustDial(t, addrURL("tcp", srv.port()))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye" {
		t.Fatalf("ReadAll: %q, %v", got, err)
	}
}

func TestCloseWrite(t *testing.T) {
	srv := echoServer(t, nil)
	c := mustDial(t, addrURL("tcp", srv.port()))
	c.SetDeadline(time.Now().Add(testTimeout))
	c.Write([]byte("half"))
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "half" {
		t.Fatalf("after CloseWrite: %q, %v", got, err)
	}
}

func TestUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	c := mustDial(t, addrURL("udp", port))
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, ok := c.RemoteAddr().(*net.UDPAddr); !ok {
		t.Errorf("RemoteAddr %T", c.RemoteAddr())
	}
	for _, msg := range []string{"one", "two two"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("datagram %q, %v; want %q", buf[:n], err, msg)
		}
	}
	// A datagram that does not fit is an error that gives its size.
	c.Write([]byte("0123456789"))
	_, err = c.Read(make([]byte, 4))
	wantCode(t, err, CodeTruncated, "10")
	// Over the UDP maximum: refused before sending.
	_, err = c.Write(make([]byte, 65508))
	wantCode(t, err, CodeInvalidArgument, "65507")
}

func TestUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "tu-go-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "echo.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	newServer(t, ln, func(c net.Conn) { io.Copy(c, c) })
	c := mustDial(t, "unix://"+path)
	c.SetDeadline(time.Now().Add(testTimeout))
	c.Write([]byte("local"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "local" {
		t.Fatalf("%q, %v", buf, err)
	}
	if ra, ok := c.RemoteAddr().(*net.UnixAddr); !ok || ra.Name != path {
		t.Errorf("RemoteAddr %v", c.RemoteAddr())
	}
}

// A TLS handshake with a server that never answers keeps Dial busy: the
// context ends it.
func TestDialContextCancel(t *testing.T) {
	srv := silentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	c, err := DialContext(ctx, addrURL("tls", srv.port()), WithTimeout(testTimeout))
	if c != nil {
		c.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("cancel took %v", took)
	}
}

func TestDialContextDeadline(t *testing.T) {
	srv := silentServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := DialContext(ctx, addrURL("tls", srv.port()))
	if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("%v is not a timeout", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestDialTimeoutOption(t *testing.T) {
	srv := silentServer(t)
	start := time.Now()
	_, err := Dial(addrURL("tls", srv.port()), WithTimeout(300*time.Millisecond))
	wantCode(t, err, CodeTimeout, "")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%v does not match os.ErrDeadlineExceeded", err)
	}
	if took := time.Since(start); took < 200*time.Millisecond || took > 5*time.Second {
		t.Fatalf("took %v, want about 300ms", took)
	}
}

func TestDialHost(t *testing.T) {
	p := testPKI(t)
	plain := echoServer(t, nil)
	secure := echoServer(t, p.serverConfig())
	cases := []struct {
		host string
		port int
		tls  bool
	}{
		{"127.0.0.1", plain.port(), false},
		{"tcp://127.0.0.1", plain.port(), false},
		{"tcp://127.0.0.1:" + itoaPort(plain.port()), 0, false},
		{"tls://localhost", secure.port(), true},
		{"ssl://127.0.0.1", secure.port(), true},
	}
	for _, tc := range cases {
		c, err := DialHost(tc.host, tc.port, WithTimeout(testTimeout), WithCAFile(p.caFile))
		if err != nil {
			t.Errorf("DialHost(%q, %d): %v", tc.host, tc.port, err)
			continue
		}
		c.SetDeadline(time.Now().Add(testTimeout))
		c.Write([]byte("fs"))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "fs" {
			t.Errorf("DialHost(%q, %d): echo %q, %v", tc.host, tc.port, buf, err)
		}
		if c.ConnectionState().TLS != tc.tls {
			t.Errorf("DialHost(%q, %d): TLS %v", tc.host, tc.port, !tc.tls)
		}
		c.Close()
	}
	_, err := DialHost("127.0.0.1:"+itoaPort(plain.port()), plain.port())
	wantCode(t, err, CodeURL, "port given twice")
	_, err = DialHost("127.0.0.1", 70000)
	wantCode(t, err, CodeURL, "70000")
	_, err = DialHost("127.0.0.1", 1<<40)
	wantCode(t, err, CodeURL, "")
}
