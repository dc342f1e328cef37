//go:build transporturl_pkgconfig

package transporturl

// With -tags transporturl_pkgconfig: the header and library of an installed
// transporturl, found by pkg-config (transporturl.pc).

/*
#cgo pkg-config: transporturl
*/
import "C"
