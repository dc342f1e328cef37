package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strconv"
)

type stdBackend struct {
	addr string
	cfg  *tls.Config
}

func newStdBackend(port int, ca string) *stdBackend {
	pem, err := os.ReadFile(ca)
	if err != nil {
		die("ca: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		die("ca: no certificates")
	}
	cfg := &tls.Config{
		RootCAs:          pool,
		ServerName:       "localhost",
		MinVersion:       tls.VersionTLS13,
		MaxVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519},
	}
	return &stdBackend{addr: "127.0.0.1:" + strconv.Itoa(port), cfg: cfg}
}

func (b *stdBackend) connect() conn {
	raw, err := net.Dial("tcp", b.addr) // TCP_NODELAY is Go's default
	if err != nil {
		die("dial: %v", err)
	}
	c := tls.Client(raw, b.cfg)
	if err := c.Handshake(); err != nil {
		die("handshake: %v", err)
	}
	return c
}

func (b *stdBackend) resumed(c conn) (bool, bool) {
	return c.(*tls.Conn).ConnectionState().DidResume, true
}

func (b *stdBackend) enableResume() {
	b.cfg.ClientSessionCache = tls.NewLRUClientSessionCache(64)
}
