//! transporturl opens network connections named by transport URLs — the
//! address strings of PHP's `stream_socket_client()` (`tcp://host:80`,
//! `udp://host:53`, `tls://host:465`) — upgrades plain connections to TLS in
//! place (STARTTLS), and hands them to C, Python and Go through one C ABI.
//!
//! Modules, one concern each: [`url`] parses, [`options`] checks settings,
//! [`net`] connects sockets, [`tls`] runs rustls, [`handle`] is a
//! connection, [`error`] the codes, and [`ffi`] the C boundary (the only
//! place with `unsafe`).

#![deny(unsafe_op_in_unsafe_fn)]

pub mod error;
pub mod ffi;
pub mod handle;
pub mod net;
pub mod options;
pub mod tls;
pub mod url;

pub use error::{Error, Result};
pub use handle::Handle;
pub use options::Options;
