package transporturl

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// Option is a connection option: one or more of the library's option keys
// (PHP's stream-context names, DESIGN §3) with their values. The library
// checks every key and value when Dial passes them on; an unknown key or a
// bad value fails the Dial with CodeInvalidArgument and a message that
// names the key.
type Option struct {
	pairs []keyValue
}

type keyValue struct{ key, value string }

// WithOption sets one option by its library name, e.g.
// WithOption("ssl.cafile", "/etc/ssl/ca.pem").
func WithOption(key, value string) Option {
	return Option{pairs: []keyValue{{key, value}}}
}

// WithOptions sets several options by name (in key order, so that the
// first bad one reported is always the same).
func WithOptions(m map[string]string) Option {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	o := Option{pairs: make([]keyValue, 0, len(keys))}
	for _, k := range keys {
		o.pairs = append(o.pairs, keyValue{k, m[k]})
	}
	return o
}

// seconds writes d as the library's decimal seconds ("2.5").
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// WithTimeout limits connect + TLS handshake ("timeout"); the default is the
// library's. -time.Second is PHP's -1: no limit. With DialContext, a
// context deadline also applies.
func WithTimeout(d time.Duration) Option { return WithOption("timeout", seconds(d)) }

// WithPeerName sets the name the server certificate must match and that is
// sent as SNI ("ssl.peer_name"); needed for TLS over unix://.
func WithPeerName(name string) Option { return WithOption("ssl.peer_name", name) }

// WithCAFile trusts the CA certificates of a PEM file instead of the system
// roots ("ssl.cafile").
func WithCAFile(path string) Option { return WithOption("ssl.cafile", path) }

// WithVerifyPeer turns certificate verification on (the default) or off
// ("ssl.verify_peer").
func WithVerifyPeer(on bool) Option { return WithOption("ssl.verify_peer", boolText(on)) }

// WithVerifyPeerName turns host name verification on (the default) or off
// ("ssl.verify_peer_name").
func WithVerifyPeerName(on bool) Option { return WithOption("ssl.verify_peer_name", boolText(on)) }

// WithAllowSelfSigned accepts a self-signed server certificate
// ("ssl.allow_self_signed").
func WithAllowSelfSigned(on bool) Option { return WithOption("ssl.allow_self_signed", boolText(on)) }

// WithALPN offers application protocols, most preferred first
// ("ssl.alpn_protocols").
func WithALPN(protocols ...string) Option {
	return WithOption("ssl.alpn_protocols", strings.Join(protocols, ","))
}

// WithClientCertificate presents a client certificate and its key, PEM
// files ("ssl.local_cert", "ssl.local_pk").
func WithClientCertificate(certFile, keyFile string) Option {
	return Option{pairs: []keyValue{{"ssl.local_cert", certFile}, {"ssl.local_pk", keyFile}}}
}

// WithBindTo binds the local end before connecting ("socket.bindto",
// "host:port").
func WithBindTo(addr string) Option { return WithOption("socket.bindto", addr) }
