package transporturl

// #include <transporturl.h>
import "C"

import (
	"context"
	"os"
	"strconv"
	"syscall"
)

// Code is a TU_* result code of the C library. Its values are the header's;
// Name gives the header's name ("TU_E_URL") and Error a short description.
//
// A Code is also an error value to match with errors.Is:
//
//	if errors.Is(err, transporturl.CodeCertificate) { ... }
type Code int32

// The codes, one for each TU_* code of the header, with the same values.
const (
	CodeOK                   Code = C.TU_OK                      // success
	CodeInvalidArgument      Code = C.TU_E_INVALID_ARGUMENT      // bad argument, option key or value, non-UTF-8 text, NUL byte
	CodeURL                  Code = C.TU_E_URL                   // malformed URL (the message gives the byte offset)
	CodeUnsupportedTransport Code = C.TU_E_UNSUPPORTED_TRANSPORT // unknown scheme, or TLS over UDP
	CodeInsecureProtocol     Code = C.TU_E_INSECURE_PROTOCOL     // SSLv2, SSLv3, TLS 1.0 or TLS 1.1 asked for
	CodeResolve              Code = C.TU_E_RESOLVE               // the host name does not resolve
	CodeRefused              Code = C.TU_E_REFUSED               // connection refused; matches syscall.ECONNREFUSED
	CodeTimeout              Code = C.TU_E_TIMEOUT               // took too long; matches os.ErrDeadlineExceeded
	CodeIO                   Code = C.TU_E_IO                    // any other OS-level failure
	CodeTLS                  Code = C.TU_E_TLS                   // TLS handshake or protocol failure
	CodeCertificate          Code = C.TU_E_CERTIFICATE           // the peer's certificate failed verification
	CodePlaintextPeer        Code = C.TU_E_PLAINTEXT_PEER        // a TLS handshake met a plaintext reply
	CodeProtocol             Code = C.TU_E_PROTOCOL              // the peer broke the rules (STARTTLS injection)
	CodeTruncated            Code = C.TU_E_TRUNCATED             // TLS ended without close_notify, or a datagram did not fit
	CodeWouldBlock           Code = C.TU_E_WOULD_BLOCK           // nothing to do yet (never returned by a Conn)
	CodeState                Code = C.TU_E_STATE                 // call not valid now; use after Close matches net.ErrClosed
	CodeInternal             Code = C.TU_E_INTERNAL              // a bug caught at the C boundary
)

// allCodes lists every Code constant (the drift test compares it with the
// header).
var allCodes = []Code{
	CodeOK, CodeInvalidArgument, CodeURL, CodeUnsupportedTransport, CodeInsecureProtocol,
	CodeResolve, CodeRefused, CodeTimeout, CodeIO, CodeTLS, CodeCertificate,
	CodePlaintextPeer, CodeProtocol, CodeTruncated, CodeWouldBlock, CodeState, CodeInternal,
}

// Name is the header's name of the code ("TU_E_URL"), or "" for a value
// that is not a code.
func (c Code) Name() string { return codeName(c) }

// String is the header's name, or "transporturl.Code(N)" for an unknown value.
func (c Code) String() string {
	if n := codeName(c); n != "" {
		return n
	}
	return "transporturl.Code(" + strconv.Itoa(int(c)) + ")"
}

// Error is the library's short description of the code (tu_strerror).
func (c Code) Error() string { return codeDescription(c) }

// Error is a failure reported by the library: the code, the operation that
// failed ("dial", "read", "write", "enable crypto", "parse", ...) and the
// library's message, which says what went wrong and where.
//
// It works with errors.Is and errors.As: errors.Is(err, CodeRefused), and
// also errors.Is(err, syscall.ECONNREFUSED) for CodeRefused,
// errors.Is(err, os.ErrDeadlineExceeded) for CodeTimeout, and
// errors.Is(err, net.ErrClosed) after Close. It is a net.Error.
type Error struct {
	Code Code   // the TU_* code
	Op   string // the operation
	Msg  string // the library's message (its description when it gave none)

	err error // the underlying Go error, if any (net.ErrClosed, a context error, ...)
}

func newError(code Code, op, msg string) *Error {
	if msg == "" {
		msg = code.Error()
	}
	return &Error{Code: code, Op: op, Msg: msg}
}

func newErrorCause(code Code, op, msg string, cause error) *Error {
	e := newError(code, op, msg)
	e.err = cause
	return e
}

func (e *Error) Error() string {
	s := "transporturl"
	if e.Op != "" {
		s += " " + e.Op
	}
	return s + ": " + e.Msg + " (" + e.Code.String() + ")"
}

// Unwrap gives the underlying Go error, if any.
func (e *Error) Unwrap() error { return e.err }

// Is matches the error's Code, another *Error with the same Code, and the
// standard errors its code stands for.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Code:
		return e.Code == t
	case *Error:
		return t != nil && e.Code == t.Code
	}
	switch e.Code {
	case CodeTimeout:
		return target == os.ErrDeadlineExceeded
	case CodeRefused:
		return target == syscall.ECONNREFUSED
	}
	return false
}

// Timeout reports whether the error is a timeout (net.Error).
func (e *Error) Timeout() bool { return e.Code == CodeTimeout }

// Temporary is Timeout (net.Error; deprecated there).
func (e *Error) Temporary() bool { return e.Code == CodeTimeout }

// contextError is the error of a dial that its context ended.
func contextError(op string, err error) *Error {
	if err == context.DeadlineExceeded {
		return newErrorCause(CodeTimeout, op, "the context's deadline passed: "+err.Error(), err)
	}
	return newErrorCause(CodeIO, op, "the context was canceled: "+err.Error(), err)
}

func nulError(op, what string, at int) *Error {
	return newError(CodeInvalidArgument, op, what+" contains a NUL byte at offset "+strconv.Itoa(at)+"; C strings cannot hold it")
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

func quote(s string) string { return strconv.Quote(s) }
