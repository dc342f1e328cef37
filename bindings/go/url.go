package transporturl

// URL is a transport URL taken apart by the library (tu_parse_url).
type URL struct {
	// Transport is "tcp", "udp", "ssl", "tls", "tlsv1.2", "tlsv1.3",
	// "unix" or "udg" (lower case).
	Transport string
	// Host is the host without brackets ("127.0.0.1", "fe80::1%eth0",
	// "example.com" in ASCII, lower case); "" for unix and udg.
	Host string
	// Port is 1..65535, or 0 when the URL has none.
	Port int
	// ExplicitScheme is true when the URL had a "name://" prefix, false when
	// tcp was implied.
	ExplicitScheme bool
	// Path is the socket path for unix and udg; "" otherwise.
	Path string
}

// ParseURL takes a transport URL apart without connecting, with the same
// rules and errors as Dial. A malformed URL is an *Error with CodeURL (or
// CodeUnsupportedTransport, CodeInsecureProtocol, CodeInvalidArgument) and a
// message that gives the byte offset.
func ParseURL(url string) (*URL, error) {
	return parseURL(url)
}

// ParseHost takes an fsockopen-style address apart without connecting, as
// DialHost would: host may carry a transport ("tls://example.com") or be a
// bare IPv6 literal ("fe80::1"); port is 1..65535, or 0 when host carries
// it or names a Unix socket. A port in both places is CodeURL.
func ParseHost(host string, port int) (*URL, error) {
	return parseHost(host, clampPort(port))
}

// clampPort passes an int port to C's int32_t: a value that does not fit
// becomes -1, which the library refuses as out of range.
func clampPort(port int) int32 {
	if port < -1<<31 || port > 1<<31-1 {
		return -1
	}
	return int32(port)
}
