package transporturl

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// TestGCReclaimsUnclosedConns dials many connections, plain and TLS, and
// drops them without Close: the cleanups must close every handle (the
// server sees each end) without crashing, and the descriptors come back.
func TestGCReclaimsUnclosedConns(t *testing.T) {
	p := testPKI(t)
	var ended atomic.Int64
	count := func(c net.Conn) {
		io.Copy(io.Discard, c)
		ended.Add(1)
	}
	plain := newServer(t, listenTCP(t), count)
	tlsLn := listenTCP(t)
	secure := newServer(t, tlsNewListener(tlsLn, p), count)
	runtime.GC()
	before := openFDs(t)

	const n = 150
	for i := 0; i < n; i++ {
		u := addrURL("tcp", plain.port())
		opts := []Option{WithTimeout(testTimeout)}
		if i%3 == 0 {
			u = addrURL("tls", secure.port())
			opts = append(opts, WithCAFile(p.caFile))
		}
		c, err := Dial(u, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("dropped")); err != nil {
			t.Fatal(err)
		}
		// c is dropped here, unclosed.
	}
	deadline := time.Now().Add(15 * time.Second)
	for ended.Load() < n && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	if got := ended.Load(); got < n {
		t.Fatalf("only %d of %d dropped connections were closed by the GC", got, n)
	}
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if after := openFDs(t); after > before+10 {
		t.Errorf("%d descriptors open before, %d after the GC", before, after)
	}
}

// TestCloseStopsCleanup: a closed Conn is not closed again by its cleanup
// (that would be a double free in the library).
func TestCloseStopsCleanup(t *testing.T) {
	srv := echoServer(t, nil)
	for i := 0; i < 50; i++ {
		c, err := Dial(addrURL("tcp", srv.port()))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	for i := 0; i < 3; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
