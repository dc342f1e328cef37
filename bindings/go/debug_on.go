//go:build debug

package transporturl

import "runtime"

// debugGC forces a collection before every call on a handle, so that a
// missing runtime.KeepAlive frees a handle under a running C call and the
// tests crash instead of passing by luck. Enabled with -tags debug.
func debugGC() { runtime.GC() }
