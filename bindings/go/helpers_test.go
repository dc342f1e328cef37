package transporturl

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// repo is the repository root, relative to this package.
const repo = "../.."

// testTimeout bounds every wait in the tests.
const testTimeout = 20 * time.Second

// pki is a CA and a leaf certificate for localhost, 127.0.0.1 and ::1, made
// at test time.
type pki struct {
	caFile   string // the CA, PEM
	certFile string // the leaf, PEM
	keyFile  string // the leaf's key, PEM
	leaf     tls.Certificate
	caPool   *x509.CertPool
}

var (
	pkiOnce sync.Once
	pkiVal  *pki
	pkiErr  error
)

func testPKI(t testing.TB) *pki {
	t.Helper()
	pkiOnce.Do(func() { pkiVal, pkiErr = makePKI() })
	if pkiErr != nil {
		t.Fatalf("making certificates: %v", pkiErr)
	}
	return pkiVal
}

func makePKI() (*pki, error) {
	dir, err := os.MkdirTemp("", "transporturl-go-pki-")
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "transporturl Go test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		return nil, err
	}
	p := &pki{
		caFile:   filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "leaf.pem"),
		keyFile:  filepath.Join(dir, "leaf.key"),
		caPool:   x509.NewCertPool(),
	}
	p.caPool.AddCert(caCert)
	write := func(path, typ string, der []byte) error {
		return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
	}
	if err := write(p.caFile, "CERTIFICATE", caDER); err != nil {
		return nil, err
	}
	if err := write(p.certFile, "CERTIFICATE", leafDER); err != nil {
		return nil, err
	}
	if err := write(p.keyFile, "PRIVATE KEY", keyDER); err != nil {
		return nil, err
	}
	p.leaf = tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
	return p, nil
}

func (p *pki) serverConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.leaf}, MinVersion: tls.VersionTLS12}
}

// server is a listener on 127.0.0.1:0 that runs handle for each connection
// in its own goroutine; Close stops it and waits for the handlers.
type server struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	conn []net.Conn
}

func newServer(t testing.TB, ln net.Listener, handle func(net.Conn)) *server {
	t.Helper()
	s := &server{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conn = append(s.conn, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(testTimeout))
				handle(c)
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conn {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *server) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func listenTCP(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// echoServer echoes every byte back until EOF (over TLS if cfg != nil).
func echoServer(t testing.TB, cfg *tls.Config) *server {
	ln := listenTCP(t)
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return newServer(t, ln, func(c net.Conn) {
		io.Copy(c, c)
		if tc, ok := c.(*tls.Conn); ok {
			tc.CloseWrite()
		}
	})
}

// silentServer accepts and reads, never writing.
func silentServer(t testing.TB) *server {
	return newServer(t, listenTCP(t), func(c net.Conn) { io.Copy(io.Discard, c) })
}

func addrURL(scheme string, port int) string {
	return scheme + "://127.0.0.1:" + strconv.Itoa(port)
}

func mustDial(t testing.TB, u string, opts ...Option) *Conn {
	t.Helper()
	c, err := Dial(u, append([]Option{WithTimeout(testTimeout)}, opts...)...)
	if err != nil {
		t.Fatalf("Dial(%q): %v", u, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantCode checks that err is an *Error with code and a message containing
// word.
func wantCode(t testing.TB, err error, code Code, word string) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", code)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *transporturl.Error", err, err)
	}
	if e.Code != code {
		t.Fatalf("code %v, want %v: %v", e.Code, code, err)
	}
	if !errors.Is(err, code) {
		t.Fatalf("errors.Is(%v, %v) is false", err, code)
	}
	if !strings.Contains(e.Msg, word) {
		t.Fatalf("message %q lacks %q", e.Msg, word)
	}
	return e
}

// within fails the test if f does not return within d.
func within(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not finish within %v", what, d)
	}
}

// readLine reads one CRLF- or LF-terminated line.
func readLine(t testing.TB, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a line: %v (got %q)", err, line)
	}
	return strings.TrimRight(line, "\r\n")
}

func tlsNewListener(ln net.Listener, p *pki) net.Listener {
	return tls.NewListener(ln, p.serverConfig())
}
