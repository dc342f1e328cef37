package transporturl

// Every call into the C library goes through this file. The helpers below
// fold "call, then ask what the handle wants / what failed" into one cgo
// crossing; they add no rules of their own.

/*
#include <stdlib.h>
#include <fcntl.h>
#include <transporturl.h>

#if !defined(TU_VERSION_MAJOR)
#error "transporturl.h defines no TU_VERSION_MAJOR: too old for this Go binding"
#elif TU_VERSION_MAJOR != 0
#error "this Go binding is written for transporturl 0.x (TU_VERSION_MAJOR 0)"
#endif

// A close-on-exec duplicate of the handle's descriptor, for the Go poller.
static int gotu_dup(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 0); }

// One non-blocking tu_read; on -TU_E_WOULD_BLOCK *want says what to wait
// for, on another failure *err holds the handle's message.
static intptr_t gotu_read(tu_handle *h, void *buf, size_t len, int32_t *want, tu_error *err) {
	intptr_t r = tu_read(h, buf, len);
	if (r == -TU_E_WOULD_BLOCK) {
		*want = tu_wants(h);
	} else if (r < 0) {
		tu_last_error(h, err);
	}
	return r;
}

static intptr_t gotu_write(tu_handle *h, const void *buf, size_t len, int32_t *want, tu_error *err) {
	intptr_t r = tu_write(h, buf, len);
	if (r == -TU_E_WOULD_BLOCK) {
		*want = tu_wants(h);
	} else if (r < 0) {
		tu_last_error(h, err);
	}
	return r;
}

static int32_t gotu_enable_crypto(tu_handle *h, int32_t method, int32_t *want, tu_error *err) {
	int32_t r = tu_enable_crypto(h, method);
	if (r == TU_E_WOULD_BLOCK) {
		*want = tu_wants(h);
	} else if (r != TU_OK) {
		tu_last_error(h, err);
	}
	return r;
}

static int32_t gotu_shutdown(tu_handle *h, int32_t how, int32_t *want, tu_error *err) {
	int32_t r = tu_shutdown(h, how);
	if (r == TU_E_WOULD_BLOCK) {
		*want = tu_wants(h);
	} else if (r != TU_OK) {
		tu_last_error(h, err);
	}
	return r;
}

// One non-blocking tu_flush (TLS records a tu_write left queued).
static int32_t gotu_flush(tu_handle *h, int32_t *want, tu_error *err) {
	int32_t r = tu_flush(h);
	if (r == TU_E_WOULD_BLOCK) {
		*want = tu_wants(h);
	} else if (r != TU_OK) {
		tu_last_error(h, err);
	}
	return r;
}

static int32_t gotu_set_nonblocking(tu_handle *h, tu_error *err) {
	int32_t r = tu_set_nonblocking(h, 1);
	if (r != TU_OK) {
		tu_last_error(h, err);
	}
	return r;
}
*/
import "C"

import (
	"runtime"
	"unsafe"
)

const (
	wantRead  = int32(C.TU_WANT_READ)
	wantWrite = int32(C.TU_WANT_WRITE)
)

// HeaderVersion is the version of the header this package was compiled
// against (TU_VERSION); Version gives the linked library's.
const HeaderVersion = C.TU_VERSION

// Version is the linked library's version (tu_version), e.g. "0.1.0".
func Version() string {
	return C.GoString(C.tu_version())
}

// cString copies s for C, refusing a NUL byte (C.CString would silently cut
// the string there). The caller frees the result with C.free.
func cString(op, what, s string) (*C.char, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return nil, nulError(op, what, i)
		}
	}
	return C.CString(s), nil
}

func freeCString(p *C.char) {
	if p != nil {
		C.free(unsafe.Pointer(p))
	}
}

// errorFrom turns a filled tu_error into an *Error for op.
func errorFrom(op string, e *C.tu_error) *Error {
	code := Code(e.code)
	msg := C.GoString(&e.message[0])
	return newError(code, op, msg)
}

// errorFromCode is errorFrom for a result code whose tu_error may belong to
// another call (the handle keeps one last error): the message is used only
// when its code matches.
func errorFromCode(op string, code Code, e *C.tu_error) *Error {
	if Code(e.code) == code {
		return errorFrom(op, e)
	}
	return newError(code, op, "")
}

func codeName(c Code) string {
	p := C.tu_code_name(C.int32_t(c))
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

func codeDescription(c Code) string {
	return C.GoString(C.tu_strerror(C.int32_t(c)))
}

// newOptions builds a tu_options from opts; tu_options_set checks every
// key and value. The caller frees the result with C.tu_options_free.
func newOptions(op string, opts []Option) (*C.tu_options, error) {
	o := C.tu_options_new()
	if o == nil {
		return nil, newError(CodeInternal, op, "tu_options_new returned NULL (out of memory)")
	}
	for _, opt := range opts {
		for _, kv := range opt.pairs {
			if err := setOption(op, o, kv.key, kv.value); err != nil {
				C.tu_options_free(o)
				return nil, err
			}
		}
	}
	return o, nil
}

func setOption(op string, o *C.tu_options, key, value string) error {
	ck, err := cString(op, "option key "+quote(key), key)
	if err != nil {
		return err
	}
	defer freeCString(ck)
	cv, err := cString(op, "the value of option "+quote(key), value)
	if err != nil {
		return err
	}
	defer freeCString(cv)
	var e C.tu_error
	if C.tu_options_set(o, ck, cv, &e) != C.TU_OK {
		return errorFrom(op, &e)
	}
	return nil
}

// connect runs tu_connect_opts (blocking; the connect and any TLS handshake
// happen here). It takes ownership of url and opts and frees them.
func connect(op string, url *C.char, opts *C.tu_options) (*C.tu_handle, error) {
	defer freeCString(url)
	defer C.tu_options_free(opts)
	var e C.tu_error
	h := C.tu_connect_opts(url, opts, &e)
	if h == nil {
		return nil, errorFrom(op, &e)
	}
	return h, nil
}

// connectHost runs tu_connect_host (fsockopen style), owning host and opts.
func connectHost(op string, host *C.char, port int32, opts *C.tu_options) (*C.tu_handle, error) {
	defer freeCString(host)
	defer C.tu_options_free(opts)
	var e C.tu_error
	h := C.tu_connect_host(host, C.int32_t(port), opts, &e)
	if h == nil {
		return nil, errorFrom(op, &e)
	}
	return h, nil
}

func closeHandle(h *C.tu_handle) {
	C.tu_close(h)
}

// parseURL takes a URL apart with tu_parse_url.
func parseURL(s string) (*URL, error) {
	const op = "parse"
	cs, err := cString(op, "the URL", s)
	if err != nil {
		return nil, err
	}
	defer freeCString(cs)
	var parts C.tu_url_parts
	var e C.tu_error
	if C.tu_parse_url(cs, &parts, &e) != C.TU_OK {
		return nil, errorFrom(op, &e)
	}
	return urlFrom(&parts), nil
}

// parseHost takes an fsockopen-style address apart with tu_parse_host.
func parseHost(host string, port int32) (*URL, error) {
	const op = "parse"
	cs, err := cString(op, "the host", host)
	if err != nil {
		return nil, err
	}
	defer freeCString(cs)
	var parts C.tu_url_parts
	var e C.tu_error
	if C.tu_parse_host(cs, C.int32_t(port), &parts, &e) != C.TU_OK {
		return nil, errorFrom(op, &e)
	}
	return urlFrom(&parts), nil
}

func urlFrom(parts *C.tu_url_parts) *URL {
	return &URL{
		Transport:      C.GoString(&parts.transport[0]),
		Host:           C.GoString(&parts.host[0]),
		Port:           int(parts.port),
		ExplicitScheme: parts.explicit_scheme != 0,
		Path:           C.GoString(&parts.path[0]),
	}
}

// --- calls on a handle; the Conn holds the lock these need ---------------

// setNonblocking switches h to non-blocking mode.
func setNonblocking(h *C.tu_handle) error {
	var e C.tu_error
	if r := C.gotu_set_nonblocking(h, &e); r != C.TU_OK {
		return errorFromCode("dial", Code(r), &e)
	}
	return nil
}

// dupFD returns a close-on-exec duplicate of h's descriptor.
func dupFD(h *C.tu_handle) (int, error) {
	fd := C.tu_fileno(h)
	if fd < 0 {
		return -1, newError(CodeInternal, "dial", "tu_fileno returned -1 for an open handle")
	}
	d, err := C.gotu_dup(fd)
	if d < 0 {
		return -1, newErrorCause(CodeIO, "dial", "cannot duplicate the connection's descriptor: "+errText(err), err)
	}
	return int(d), nil
}

// result of one non-blocking call: n >= 0 is a count (or TU_OK), otherwise
// code is set; want is meaningful for CodeWouldBlock.
type result struct {
	n    int
	code Code
	want int32
	err  *Error
}

func (r *result) set(op string, v int64, want C.int32_t, e *C.tu_error) {
	if v >= 0 {
		*r = result{n: int(v)}
		return
	}
	code := Code(-v)
	*r = result{code: code, want: int32(want)}
	if code != CodeWouldBlock {
		r.err = errorFromCode(op, code, e)
	}
}

func readOnce(h *C.tu_handle, b []byte) (r result) {
	var want C.int32_t
	var e C.tu_error
	debugGC()
	v := C.gotu_read(h, unsafe.Pointer(unsafe.SliceData(b)), C.size_t(len(b)), &want, &e)
	r.set("read", int64(v), want, &e)
	return r
}

func writeOnce(h *C.tu_handle, b []byte) (r result) {
	var want C.int32_t
	var e C.tu_error
	debugGC()
	v := C.gotu_write(h, unsafe.Pointer(unsafe.SliceData(b)), C.size_t(len(b)), &want, &e)
	r.set("write", int64(v), want, &e)
	runtime.KeepAlive(b)
	return r
}

func flushOnce(h *C.tu_handle) (r result) {
	var want C.int32_t
	var e C.tu_error
	debugGC()
	v := C.gotu_flush(h, &want, &e)
	r.set("write", -int64(v), want, &e)
	return r
}

func enableCryptoOnce(h *C.tu_handle, method CryptoMethod) (r result) {
	var want C.int32_t
	var e C.tu_error
	debugGC()
	v := C.gotu_enable_crypto(h, C.int32_t(method), &want, &e)
	r.set("enable crypto", -int64(v), want, &e)
	return r
}

func shutdownOnce(h *C.tu_handle, how int32) (r result) {
	var want C.int32_t
	var e C.tu_error
	debugGC()
	v := C.gotu_shutdown(h, C.int32_t(how), &want, &e)
	r.set("shutdown", -int64(v), want, &e)
	return r
}

const (
	shutRead  = int32(C.TU_SHUT_RD)
	shutWrite = int32(C.TU_SHUT_WR)
)

func goStringOrEmpty(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// textInto calls one of the library's "copy a string into buf" functions
// (tu_tls_alpn, tu_tls_sni); "" when it fails (TLS not on).
func textInto(f func(buf *C.char, n C.size_t) C.int32_t) string {
	var buf [256]C.char // the header: 256 bytes always suffice
	if f(&buf[0], C.size_t(len(buf))) != C.TU_OK {
		return ""
	}
	return C.GoString(&buf[0])
}

func connectionState(h *C.tu_handle) ConnectionState {
	debugGC()
	v := C.tu_tls_version(h)
	if v == nil {
		return ConnectionState{}
	}
	return ConnectionState{
		TLS:          true,
		Version:      C.GoString(v),
		CipherSuite:  goStringOrEmpty(C.tu_tls_cipher_suite(h)),
		Group:        goStringOrEmpty(C.tu_tls_group(h)),
		ALPN:         textInto(func(b *C.char, n C.size_t) C.int32_t { return C.tu_tls_alpn(h, b, n) }),
		Resumed:      C.tu_tls_resumed(h) == 1,
		PeerVerified: C.tu_tls_peer_verified(h) == 1,
		ServerName:   textInto(func(b *C.char, n C.size_t) C.int32_t { return C.tu_tls_sni(h, b, n) }),
	}
}

// wants is tu_wants: the TU_WANT_* bits.
func wants(h *C.tu_handle) int32 {
	return int32(C.tu_wants(h))
}

// peerCertificates copies the server's chain (DER) kept with
// ssl.capture_peer_cert.
func peerCertificates(h *C.tu_handle) ([][]byte, error) {
	const op = "peer certificates"
	var chain [][]byte
	for i := 0; ; i++ {
		debugGC()
		size := C.tu_tls_peer_cert(h, C.size_t(i), nil, 0)
		if size < 0 {
			code := Code(-size)
			if code == CodeInvalidArgument && i > 0 {
				return chain, nil // past the end of the chain
			}
			var e C.tu_error
			C.tu_last_error(h, &e)
			return nil, errorFromCode(op, code, &e)
		}
		der := make([]byte, int(size))
		got := C.tu_tls_peer_cert(h, C.size_t(i), unsafe.Pointer(unsafe.SliceData(der)), C.size_t(len(der)))
		if got < 0 {
			var e C.tu_error
			C.tu_last_error(h, &e)
			return nil, errorFromCode(op, Code(-got), &e)
		}
		chain = append(chain, der[:int(got)])
	}
}
