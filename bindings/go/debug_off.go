//go:build !debug

package transporturl

// debugGC is a no-op; build with -tags debug to force a collection before
// every call on a handle (exposes a missing runtime.KeepAlive).
func debugGC() {}
