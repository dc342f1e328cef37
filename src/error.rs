//! The one error type of the crate: a stable code (the `TU_E_*` values of the
//! C header) plus a human-readable message.

use std::fmt;

/// Success.
pub const TU_OK: i32 = 0;
/// NULL where a value is needed, bad option key or value, non-UTF-8 text, a zero
/// length, a datagram over the UDP maximum.
pub const TU_E_INVALID_ARGUMENT: i32 = 1;
/// The URL is malformed (the message gives the byte offset).
pub const TU_E_URL: i32 = 2;
/// Unknown scheme, or a combination that does not exist (TLS over UDP).
pub const TU_E_UNSUPPORTED_TRANSPORT: i32 = 3;
/// SSLv2, SSLv3, TLS 1.0 or TLS 1.1 asked for.
pub const TU_E_INSECURE_PROTOCOL: i32 = 4;
/// The host name does not resolve.
pub const TU_E_RESOLVE: i32 = 5;
/// Connection refused (TCP RST, or ICMP port unreachable on UDP).
pub const TU_E_REFUSED: i32 = 6;
/// Connect, handshake, read or write took longer than allowed.
pub const TU_E_TIMEOUT: i32 = 7;
/// Any other OS-level failure (the message has the OS text).
pub const TU_E_IO: i32 = 8;
/// TLS handshake or protocol failure not covered by a more precise code.
pub const TU_E_TLS: i32 = 9;
/// The peer's certificate failed verification.
pub const TU_E_CERTIFICATE: i32 = 10;
/// A TLS handshake met a plaintext reply (e.g. an SMTP `220` greeting).
pub const TU_E_PLAINTEXT_PEER: i32 = 11;
/// The peer broke the rules, e.g. plaintext queued behind a STARTTLS reply.
pub const TU_E_PROTOCOL: i32 = 12;
/// TLS stream ended without close_notify, or a datagram did not fit the buffer.
pub const TU_E_TRUNCATED: i32 = 13;
/// Non-blocking handle, nothing to do yet.
pub const TU_E_WOULD_BLOCK: i32 = 14;
/// Call not valid now (crypto on UDP, enable twice, use after shutdown).
pub const TU_E_STATE: i32 = 15;
/// A bug caught at the boundary (a panic); never a crash.
pub const TU_E_INTERNAL: i32 = 16;

/// Every code with its name, in value order. The single source for
/// `tu_strerror` and for the bindings' drift tests.
pub const CODES: &[(i32, &str, &str)] = &[
    (TU_OK, "TU_OK", "success"),
    (TU_E_INVALID_ARGUMENT, "TU_E_INVALID_ARGUMENT", "invalid argument"),
    (TU_E_URL, "TU_E_URL", "malformed URL"),
    (TU_E_UNSUPPORTED_TRANSPORT, "TU_E_UNSUPPORTED_TRANSPORT", "unsupported transport"),
    (TU_E_INSECURE_PROTOCOL, "TU_E_INSECURE_PROTOCOL", "insecure protocol refused"),
    (TU_E_RESOLVE, "TU_E_RESOLVE", "host name does not resolve"),
    (TU_E_REFUSED, "TU_E_REFUSED", "connection refused"),
    (TU_E_TIMEOUT, "TU_E_TIMEOUT", "timed out"),
    (TU_E_IO, "TU_E_IO", "I/O error"),
    (TU_E_TLS, "TU_E_TLS", "TLS error"),
    (TU_E_CERTIFICATE, "TU_E_CERTIFICATE", "certificate verification failed"),
    (TU_E_PLAINTEXT_PEER, "TU_E_PLAINTEXT_PEER", "peer answered in plaintext"),
    (TU_E_PROTOCOL, "TU_E_PROTOCOL", "peer protocol violation"),
    (TU_E_TRUNCATED, "TU_E_TRUNCATED", "data truncated"),
    (TU_E_WOULD_BLOCK, "TU_E_WOULD_BLOCK", "operation would block"),
    (TU_E_STATE, "TU_E_STATE", "call not valid in this state"),
    (TU_E_INTERNAL, "TU_E_INTERNAL", "internal error"),
];

/// The name of a code (`"TU_E_URL"`), or `None` for a value that is not a code.
pub fn code_name(code: i32) -> Option<&'static str> {
    CODES.iter().find(|c| c.0 == code).map(|c| c.1)
}

/// A failure: a `TU_E_*` code and a message that says what went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: i32,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Error { code, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(TU_E_INVALID_ARGUMENT, message)
    }
    pub fn url(message: impl Into<String>) -> Self {
        Error::new(TU_E_URL, message)
    }
    pub fn state(message: impl Into<String>) -> Self {
        Error::new(TU_E_STATE, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(TU_E_INTERNAL, message)
    }
    pub fn name(&self) -> &'static str {
        code_name(self.code).unwrap_or("TU_E_?")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name(), self.message)
    }
}

impl std::error::Error for Error {}
