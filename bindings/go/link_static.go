//go:build !transporturl_pkgconfig

package transporturl

// Default linking: the static library of the repository's own build
// (`cargo build --release` at the top of the repository), with the system
// libraries a Rust staticlib needs on Linux (the list printed by
// `cargo rustc --release -- --print native-static-libs`).
//
// Build with -tags transporturl_pkgconfig to link an installed library found
// by pkg-config instead.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libtransporturl.a -lgcc_s -lutil -lrt -lpthread -lm -ldl
*/
import "C"
