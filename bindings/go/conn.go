package transporturl

// #include <transporturl.h>
import "C"

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// CryptoMethod says what EnableCrypto does: turn TLS on with a choice of
// versions, or off again.
type CryptoMethod int32

// The methods of tu_enable_crypto.
const (
	CryptoNone  CryptoMethod = C.TU_CRYPTO_NONE    // turn TLS off: close_notify both ways, then plaintext
	CryptoAny   CryptoMethod = C.TU_CRYPTO_ANY     // TLS 1.2 or 1.3
	CryptoTLS12 CryptoMethod = C.TU_CRYPTO_TLSV1_2 // exactly TLS 1.2
	CryptoTLS13 CryptoMethod = C.TU_CRYPTO_TLSV1_3 // exactly TLS 1.3
	CryptoSSLv2 CryptoMethod = C.TU_CRYPTO_SSLV2   // refused: CodeInsecureProtocol
	CryptoSSLv3 CryptoMethod = C.TU_CRYPTO_SSLV3   // refused: CodeInsecureProtocol
	CryptoTLS10 CryptoMethod = C.TU_CRYPTO_TLSV1_0 // refused: CodeInsecureProtocol
	CryptoTLS11 CryptoMethod = C.TU_CRYPTO_TLSV1_1 // refused: CodeInsecureProtocol
)

// ConnectionState describes the TLS session of a Conn, as far as the library
// reports it. TLS is false (and the rest empty) while the Conn is plaintext.
type ConnectionState struct {
	TLS          bool
	Version      string // "TLSv1.3" or "TLSv1.2"
	CipherSuite  string // IANA name, e.g. "TLS_AES_256_GCM_SHA384"
	Group        string // key exchange group, e.g. "X25519"
	ALPN         string // negotiated application protocol, "" if none
	Resumed      bool   // the session was resumed
	PeerVerified bool   // the peer's certificate was verified
	ServerName   string // the SNI sent, "" if none
}

// Conn is a connection opened from a transport URL. It is a net.Conn: Read,
// Write and Close may be called from several goroutines, one Read may run
// while another goroutine writes, deadlines work as for net.TCPConn
// (os.ErrDeadlineExceeded), and Close unblocks a pending Read or Write.
//
// Underneath, the library's handle runs in non-blocking mode; the Go
// runtime's poller waits on a duplicate of its descriptor, and a lock is
// held only around each (non-blocking) call into the library.
type Conn struct {
	// mu guards h: RLock around one tu_read, tu_write or tu_flush call (the
	// library allows one reader and one writer at a time, and rmu and wmu
	// keep it at that), Lock around every other call, and to close.
	mu  sync.RWMutex
	h   *C.tu_handle // nil once closed
	rmu sync.Mutex   // one Read at a time
	wmu sync.Mutex   // one Write (with its flush) at a time

	closed  atomic.Bool
	secure  atomic.Bool     // TLS is on (records may queue inside: see flush)
	file    *os.File        // dup of the handle's descriptor, registered with the poller
	rc      syscall.RawConn // file's, for waiting
	cleanup runtime.Cleanup // closes the handle if the Conn is dropped unclosed

	laddr, raddr net.Addr
}

// Dial opens the connection url names ("tcp://host:port", "udp://…",
// "tls://host:443", "unix:///path", …) with opts, including the TLS
// handshake for ssl://, tls://, tlsv1.2:// and tlsv1.3://.
func Dial(url string, opts ...Option) (*Conn, error) {
	return DialContext(context.Background(), url, opts...)
}

// DialContext is Dial with a context. A deadline of ctx also bounds the
// library's connect and handshake ("timeout"; an explicit WithTimeout
// given after it wins); when ctx ends first, DialContext returns at once
// with an error that matches ctx.Err() and the pending connect is closed as
// soon as the library returns.
func DialContext(ctx context.Context, url string, opts ...Option) (*Conn, error) {
	const op = "dial"
	curl, err := cString(op, "the URL", url)
	if err != nil {
		return nil, err
	}
	return dial(ctx, op, opts, func(o *C.tu_options) (*C.tu_handle, error) {
		return connect(op, curl, o)
	}, func() { freeCString(curl) })
}

// DialHost opens a connection fsockopen-style: host is an address with an
// optional transport and no port ("tls://example.com", "127.0.0.1",
// "[::1]", "unix:///run/app.sock"), port is the port (0 when host has one
// or needs none). A port given in both is an error.
func DialHost(host string, port int, opts ...Option) (*Conn, error) {
	return DialHostContext(context.Background(), host, port, opts...)
}

// DialHostContext is DialHost with a context, as DialContext.
func DialHostContext(ctx context.Context, host string, port int, opts ...Option) (*Conn, error) {
	const op = "dial"
	chost, err := cString(op, "the host", host)
	if err != nil {
		return nil, err
	}
	return dial(ctx, op, opts, func(o *C.tu_options) (*C.tu_handle, error) {
		return connectHost(op, chost, clampPort(port), o)
	}, func() { freeCString(chost) })
}

type dialResult struct {
	h   *C.tu_handle
	err error
}

// dial builds the options and runs open (which owns them and the address)
// on this goroutine, or on another one when ctx can end first.
func dial(ctx context.Context, op string, opts []Option,
	open func(*C.tu_options) (*C.tu_handle, error), release func()) (*Conn, error) {
	if ctx == nil {
		release()
		panic("transporturl: nil Context")
	}
	if err := ctx.Err(); err != nil {
		release()
		return nil, contextError(op, err)
	}
	if d, ok := ctx.Deadline(); ok {
		left := time.Until(d)
		if left <= 0 {
			release()
			return nil, contextError(op, context.DeadlineExceeded)
		}
		opts = append([]Option{WithTimeout(left)}, opts...)
	}
	o, err := newOptions(op, opts)
	if err != nil {
		release()
		return nil, err
	}
	if ctx.Done() == nil {
		h, err := open(o)
		if err != nil {
			return nil, err
		}
		return newConn(h)
	}
	done := make(chan dialResult, 1)
	go func() {
		h, err := open(o)
		done <- dialResult{h, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			if ctx.Err() != nil {
				return nil, contextError(op, ctx.Err())
			}
			return nil, r.err
		}
		return newConn(r.h)
	case <-ctx.Done():
		go func() {
			if r := <-done; r.h != nil {
				closeHandle(r.h)
			}
		}()
		return nil, contextError(op, ctx.Err())
	}
}

// newConn wraps an open handle: non-blocking mode, a duplicate of its
// descriptor for the poller, the addresses, and a cleanup as a safety net.
func newConn(h *C.tu_handle) (*Conn, error) {
	if err := setNonblocking(h); err != nil {
		closeHandle(h)
		return nil, err
	}
	fd, err := dupFD(h)
	if err != nil {
		closeHandle(h)
		return nil, err
	}
	// The descriptor is non-blocking, so os.NewFile registers it with the
	// runtime poller; deadlines then work, which proves the registration.
	file := os.NewFile(uintptr(fd), "transporturl")
	if err := file.SetDeadline(time.Time{}); err != nil {
		file.Close()
		closeHandle(h)
		return nil, newErrorCause(CodeInternal, "dial", "the descriptor cannot be used with the Go poller: "+err.Error(), err)
	}
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		closeHandle(h)
		return nil, newErrorCause(CodeInternal, "dial", "the descriptor cannot be used with the Go poller: "+err.Error(), err)
	}
	c := &Conn{h: h, file: file, rc: rc}
	c.secure.Store(connectionState(h).TLS)
	c.laddr, c.raddr = addresses(rc)
	c.cleanup = runtime.AddCleanup(c, func(h *C.tu_handle) { closeHandle(h) }, h)
	return c, nil
}

// handle is the C handle; the caller holds mu and has checked h != nil.
func (c *Conn) handle() *C.tu_handle {
	if c.h == nil {
		panic("transporturl: use of a closed Conn's handle")
	}
	return c.h
}

func (c *Conn) closedError(op string) *Error {
	return newErrorCause(CodeState, op, "use of closed connection", net.ErrClosed)
}

// waitError turns an error of the poller into the Conn's.
func (c *Conn) waitError(op string, err error) error {
	switch {
	case c.closed.Load():
		return c.closedError(op)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return newErrorCause(CodeTimeout, op, "i/o timeout: the "+op+" deadline passed", os.ErrDeadlineExceeded)
	default:
		return newErrorCause(CodeIO, op, "waiting for the socket: "+err.Error(), err)
	}
}

// drive runs step (one non-blocking call) until it does not ask to wait,
// waiting on the poller in between: first in direction dir, then in
// the direction the library says it wants. A wait for reading is bounded
// by the read deadline, one for writing by the write deadline.
func (c *Conn) drive(op string, dir int32, step func() result) (result, error) {
	for {
		var r result
		try := func(uintptr) bool {
			r = step()
			if r.code != CodeWouldBlock {
				return true
			}
			// Wait here if the library wants this direction (or says nothing).
			return !(r.want&dir != 0 || r.want == 0)
		}
		var err error
		if dir == wantWrite {
			err = c.rc.Write(try)
		} else {
			err = c.rc.Read(try)
		}
		if err != nil {
			return r, c.waitError(op, err)
		}
		if r.code != CodeWouldBlock {
			return r, nil
		}
		if r.want&wantRead != 0 {
			dir = wantRead
		} else {
			dir = wantWrite
		}
	}
}

// shared runs f with the handle under the read lock (tu_read, tu_write).
func (c *Conn) shared(f func(h *C.tu_handle) result) result {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return result{code: CodeState, err: c.closedError("")}
	}
	r := f(c.handle())
	runtime.KeepAlive(c)
	return r
}

// exclusive runs f with the handle under the write lock (every other call).
func (c *Conn) exclusive(f func(h *C.tu_handle) result) result {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return result{code: CodeState, err: c.closedError("")}
	}
	r := f(c.handle())
	runtime.KeepAlive(c)
	return r
}

// fail gives r's error for op (a closed Conn's as net.ErrClosed).
func (c *Conn) fail(op string, r result) error {
	if r.err == nil {
		return newError(r.code, op, "")
	}
	r.err.Op = op
	return r.err
}

// Read reads up to len(b) bytes: n > 0, or io.EOF at the peer's orderly end
// (TCP FIN; TLS close_notify). On udp:// and udg:// one Read is one
// datagram; one that does not fit b is an error (CodeTruncated). A TLS peer
// that closes without close_notify gives CodeTruncated after all its data.
func (c *Conn) Read(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.closedError("read")
	}
	if len(b) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	r, err := c.drive("read", wantRead, func() result {
		r := c.shared(func(h *C.tu_handle) result { return readOnce(h, b) })
		if r.code == CodeWouldBlock {
			// A read waits for data. tu_wants also shows the writer's bits,
			// and records queued by a Write are the writer's to send (see
			// flush), so wait for reading only.
			r.want = wantRead
		}
		return r
	})
	switch {
	case err != nil:
		return 0, err
	case r.code != CodeOK:
		return 0, c.fail("read", r)
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

// Write writes all of b, or returns how much went out and why the rest did
// not. On udp:// and udg:// one Write is one datagram. Over TLS it returns
// once the library holds none of b's encrypted records back (see flush);
// if the write deadline passes while some still wait for room, it returns
// len(b) with the timeout error, and the next Write (or Read) sends them
// first.
func (c *Conn) Write(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.closedError("write")
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	total := 0
	for total < len(b) {
		rest := b[total:]
		r, err := c.drive("write", wantWrite, func() result {
			r := c.shared(func(h *C.tu_handle) result { return writeOnce(h, rest) })
			if r.code == CodeWouldBlock {
				// A write waits for room; its tu_wants may be the reader's.
				r.want = wantWrite
			}
			return r
		})
		if err != nil {
			return total, err
		}
		if r.code != CodeOK {
			return total, c.fail("write", r)
		}
		total += r.n
	}
	return total, c.flush()
}

// flush sends the TLS records a Write left queued inside the handle. In
// non-blocking mode tu_write may accept bytes whose encrypted records the
// socket cannot take yet (tu_wants then shows TU_WANT_WRITE); tu_flush
// sends them, and says TU_E_WOULD_BLOCK while some remain. Write returns
// only once they are all out, so that a request is never left half sent
// while Read waits for the answer. tu_flush is a write-side call: a Read
// may run meanwhile. The wait for room is bounded by the write deadline.
func (c *Conn) flush() error {
	if !c.secure.Load() {
		return nil // only TLS queues records inside (tu_flush: TU_OK at once)
	}
	r, err := c.drive("write", wantWrite, func() result {
		r := c.shared(flushOnce)
		if r.code == CodeWouldBlock {
			// Records remain: wait for room. tu_wants may show the
			// reader's bits too; sending never needs the socket readable.
			r.want = wantWrite
		}
		return r
	})
	if err != nil {
		return err
	}
	if r.code != CodeOK {
		return c.fail("write", r)
	}
	return nil
}

// wants is tu_wants now (0 once closed); the tests use it.
func (c *Conn) wants() int32 {
	return int32(c.exclusive(func(h *C.tu_handle) result { return result{n: int(wants(h))} }).n)
}

// Close closes the connection (over TLS it sends close_notify when the
// socket takes it at once) and unblocks any pending Read or Write, which
// then return an error matching net.ErrClosed. Calling it again does
// nothing and returns nil.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	// Wakes every waiter on the poller, and returns once none is left
	// inside a (short, non-blocking) library call.
	c.file.Close()
	c.mu.Lock()
	h := c.h
	c.h = nil
	c.mu.Unlock()
	c.cleanup.Stop()
	closeHandle(h)
	runtime.KeepAlive(c)
	return nil
}

// busy takes the reader's and the writer's turn for a call that must not
// overlap a Read or Write; it refuses instead of waiting for one that may
// never end.
func (c *Conn) busy(op string) (release func(), err error) {
	if !c.rmu.TryLock() {
		return nil, newError(CodeState, op, op+" while a Read is in progress on the connection")
	}
	if !c.wmu.TryLock() {
		c.rmu.Unlock()
		return nil, newError(CodeState, op, op+" while a Write is in progress on the connection")
	}
	return func() { c.wmu.Unlock(); c.rmu.Unlock() }, nil
}

// EnableCrypto turns TLS on (STARTTLS: CryptoAny, CryptoTLS12, CryptoTLS13)
// or off (CryptoNone) on the connection; the legacy methods are refused with
// CodeInsecureProtocol. Call it right after the server's go-ahead (SMTP:
// 220 to STARTTLS): plaintext already waiting behind it is refused with
// CodeProtocol (injection). The read and write deadlines bound the
// handshake. It must not overlap a Read or Write (CodeState).
func (c *Conn) EnableCrypto(method CryptoMethod) error {
	const op = "enable crypto"
	if c.closed.Load() {
		return c.closedError(op)
	}
	release, err := c.busy(op)
	if err != nil {
		return err
	}
	defer release()
	r, err := c.drive(op, wantRead, func() result {
		return c.exclusive(func(h *C.tu_handle) result { return enableCryptoOnce(h, method) })
	})
	if err != nil {
		return err
	}
	if r.code != CodeOK {
		return c.fail(op, r)
	}
	c.secure.Store(method != CryptoNone)
	return nil
}

// CloseWrite shuts down the sending side (over TLS after close_notify);
// the peer reads EOF, and Read goes on working.
func (c *Conn) CloseWrite() error { return c.shutdown("close write", shutWrite) }

// CloseRead shuts down the receiving side.
func (c *Conn) CloseRead() error { return c.shutdown("close read", shutRead) }

func (c *Conn) shutdown(op string, how int32) error {
	if c.closed.Load() {
		return c.closedError(op)
	}
	r, err := c.drive(op, wantWrite, func() result {
		return c.exclusive(func(h *C.tu_handle) result { return shutdownOnce(h, how) })
	})
	if err != nil {
		return err
	}
	if r.code != CodeOK {
		return c.fail(op, r)
	}
	return nil
}

// ConnectionState reports the TLS session; zero while the Conn is
// plaintext or closed.
func (c *Conn) ConnectionState() ConnectionState {
	var s ConnectionState
	c.exclusive(func(h *C.tu_handle) result {
		s = connectionState(h)
		return result{}
	})
	return s
}

// LocalAddr is the local address (*net.TCPAddr, *net.UDPAddr or *net.UnixAddr).
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr is the peer's address (*net.TCPAddr, *net.UDPAddr or *net.UnixAddr).
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets the read and write deadlines (net.Conn).
func (c *Conn) SetDeadline(t time.Time) error {
	return c.deadline("set deadline", c.file.SetDeadline, t)
}

// SetReadDeadline sets the deadline for pending and future Reads (net.Conn).
func (c *Conn) SetReadDeadline(t time.Time) error {
	return c.deadline("set read deadline", c.file.SetReadDeadline, t)
}

// SetWriteDeadline sets the deadline for pending and future Writes (net.Conn).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.deadline("set write deadline", c.file.SetWriteDeadline, t)
}

func (c *Conn) deadline(op string, set func(time.Time) error, t time.Time) error {
	if c.closed.Load() {
		return c.closedError(op)
	}
	if err := set(t); err != nil {
		if c.closed.Load() {
			return c.closedError(op)
		}
		return newErrorCause(CodeIO, op, err.Error(), err)
	}
	return nil
}

var _ net.Conn = (*Conn)(nil)

// PeerCertificates is the certificate chain the server sent (its own
// first), kept when the option ssl.capture_peer_cert was set; CodeState
// otherwise, or when TLS is not on.
func (c *Conn) PeerCertificates() ([]*x509.Certificate, error) {
	const op = "peer certificates"
	var chain [][]byte
	var err error
	r := c.exclusive(func(h *C.tu_handle) result {
		chain, err = peerCertificates(h)
		return result{}
	})
	if r.err != nil {
		return nil, c.fail(op, r)
	}
	if err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, 0, len(chain))
	for _, der := range chain {
		cert, perr := x509.ParseCertificate(der)
		if perr != nil {
			return nil, newErrorCause(CodeTLS, op, "the library gave a certificate Go cannot parse: "+perr.Error(), perr)
		}
		certs = append(certs, cert)
	}
	return certs, nil
}
