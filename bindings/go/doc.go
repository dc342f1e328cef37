// Package transporturl opens the connections that PHP-style transport URLs
// name — "tcp://host:port", "udp://…", "tls://host:443", "tlsv1.3://…",
// "unix:///run/app.sock", "udg://…" — through the transporturl C library
// (Rust: sockets with socket2, TLS with rustls), and upgrades plain
// connections with STARTTLS.
//
//	conn, err := transporturl.Dial("tls://example.com:443",
//		transporturl.WithTimeout(5*time.Second))
//	if err != nil {
//		var e *transporturl.Error
//		if errors.As(err, &e) { log.Fatal(e.Code, e.Msg) }
//	}
//	defer conn.Close()
//
// A *Conn is a net.Conn: deadlines, Close unblocking a pending Read, one
// goroutine reading while another writes. EnableCrypto turns TLS on
// (STARTTLS) and off, ConnectionState describes the TLS session. DialHost
// is the fsockopen style (host and port apart); ParseURL and ParseHost
// take addresses apart without connecting.
//
// The binding is thin: URL parsing, option checking, error codes and
// messages all come from the library, so that C, Python and Go behave
// alike. Options are the library's keys (PHP's stream-context names such
// as "ssl.cafile" or "timeout") set with WithOption, or with the typed
// helpers for the common ones.
//
// # Errors
//
// Failures are *Error values with the library's Code, the operation and
// the library's message. They match with errors.Is: the Code itself
// (errors.Is(err, CodeCertificate)), os.ErrDeadlineExceeded for timeouts
// (and they are net.Error with Timeout() true), syscall.ECONNREFUSED for a
// refused connection, net.ErrClosed after Close, and the context's error
// when DialContext's context ends first. Strings with a NUL byte are
// refused with CodeInvalidArgument, never cut short.
//
// # How it works
//
// Dial runs the library's blocking connect (and TLS handshake) on the
// calling goroutine, or on a helper goroutine for DialContext so that the
// context can end the wait. The handle is then switched to non-blocking
// mode and a duplicate of its descriptor is registered with the Go
// runtime's poller (os.NewFile + SyscallConn): Read, Write, EnableCrypto
// and CloseWrite make non-blocking library calls, holding a lock only
// around each call, and wait on the poller for what the library says it
// wants. Deadlines and Close act on those waits. Because of this the
// library's "read_timeout" and "write_timeout" options, which bound its
// blocking calls, have no effect on a Conn: use the deadlines. The same
// holds for a STARTTLS handshake: EnableCrypto waits as long as the
// deadlines allow. Over TLS, Write returns only once the library holds no
// encrypted records of it back: a non-blocking tu_write may accept bytes
// whose records the socket cannot take yet, so Write then calls tu_flush,
// waiting on the poller for room (bounded by the write deadline) until it
// returns TU_OK. tu_flush is a write-side call: a Read may run meanwhile.
//
// A Conn dropped without Close is closed by a cleanup once the garbage
// collector finds it unreachable; Close is still the way to release it in
// time.
//
// # Building
//
// By default the package links the static library of the repository's
// build (target/release/libtransporturl.a, made by `cargo build --release`
// at the top of the repository) with the header in include/. With
// -tags transporturl_pkgconfig it uses an installed library found by
// pkg-config (transporturl.pc) instead. The preamble refuses a header of
// another major version. -tags debug forces a garbage collection before
// every library call, to expose a missing runtime.KeepAlive in tests.
package transporturl
