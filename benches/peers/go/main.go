// The Go peers of `make bench`:
//
//	go-peer tls    WORKLOAD port=P ca=FILE n=N bytes=B   crypto/tls (X25519 pinned, TLS 1.3)
//	go-peer tu     WORKLOAD ...                          the transporturl binding (built with -tags tubinding)
//	go-peer cgo    ffi|version ...                       a bare cgo call of tu_write (W7 baseline)
//
// Prints one JSON line on stdout; exit 3 = not supported by this build.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const chunk = 16384

type conn interface {
	io.ReadWriteCloser
}

type backend interface {
	connect() conn
	resumed(c conn) (bool, bool) // (resumed, known)
	enableResume()
}

var args = map[string]string{}

func die(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "go peer: "+format+"\n", a...)
	os.Exit(2)
}

func unsupported(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(3)
}

func out(m map[string]any) {
	b, _ := json.Marshal(m)
	fmt.Println(string(b))
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6 + float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6
}

func statusKiB(field string) float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			f := strings.Fields(l[len(field):])
			if len(f) > 0 {
				v, _ := strconv.ParseFloat(f[0], 64)
				return v
			}
		}
	}
	return 0
}

func intArg(k string) int64 {
	v, _ := strconv.ParseInt(args[k], 10, 64)
	return v
}

func writeAll(c conn, b []byte) {
	if n, err := c.Write(b); err != nil || n != len(b) {
		die("write: %d %v", n, err)
	}
}

func bulk(t0 time.Time, c0 float64, bytes int64) {
	wall := time.Since(t0).Seconds()
	cpu := cpuSeconds() - c0
	out(map[string]any{"value": float64(bytes) / wall / 1e6, "unit": "MB/s", "wall_s": wall, "cpu_s": cpu,
		"cpu_per": cpu / (float64(bytes) / (1 << 30)), "cpu_unit": "s/GiB"})
}

func send(b backend, bytes int64) {
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = 0x5a
	}
	c := b.connect()
	t0, c0 := time.Now(), cpuSeconds()
	for left := bytes; left > 0; {
		n := int64(chunk)
		if left < n {
			n = left
		}
		writeAll(c, buf[:n])
		left -= n
	}
	ack := make([]byte, 1)
	if _, err := io.ReadFull(c, ack); err != nil {
		die("ack: %v", err)
	}
	c.Close()
	bulk(t0, c0, bytes)
}

func recv(b backend, bytes int64) {
	buf := make([]byte, chunk)
	c := b.connect()
	t0, c0 := time.Now(), cpuSeconds()
	writeAll(c, []byte("g"))
	var got int64
	for {
		n, err := c.Read(buf)
		got += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			die("read: %v", err)
		}
	}
	c.Close()
	if got != bytes {
		die("received %d of %d", got, bytes)
	}
	bulk(t0, c0, bytes)
}

func pingpong(c conn, n int) {
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	warm := n / 50
	if warm < 10 {
		warm = 10
	}
	rtts := make([]float64, 0, n)
	t0, c0 := time.Now(), cpuSeconds()
	for i := 0; i < warm+n; i++ {
		if i == warm {
			t0, c0 = time.Now(), cpuSeconds()
		}
		s := time.Now()
		writeAll(c, msg)
		if _, err := io.ReadFull(c, buf); err != nil {
			die("ping-pong: %v", err)
		}
		if i >= warm {
			rtts = append(rtts, float64(time.Since(s).Nanoseconds())/1000)
		}
	}
	wall := time.Since(t0).Seconds()
	cpu := cpuSeconds() - c0
	sort.Float64s(rtts)
	out(map[string]any{"value": rtts[len(rtts)/2], "unit": "us", "wall_s": wall, "cpu_s": cpu,
		"cpu_per": cpu / float64(n) * 1e6, "cpu_unit": "us/RTT"})
}

func handshakes(b backend, n int, resume bool) {
	one := make([]byte, 1)
	if resume {
		b.enableResume()
		c := b.connect()
		io.ReadFull(c, one)
		c.Close()
	}
	resumed, known := 0, false
	t0, c0 := time.Now(), cpuSeconds()
	for i := 0; i < n; i++ {
		c := b.connect()
		if _, err := io.ReadFull(c, one); err != nil {
			die("read: %v", err)
		}
		if r, k := b.resumed(c); k {
			known = true
			if r {
				resumed++
			}
		}
		c.Close()
	}
	wall := time.Since(t0).Seconds()
	cpu := cpuSeconds() - c0
	m := map[string]any{"value": float64(n) / wall, "unit": "hs/s", "wall_s": wall, "cpu_s": cpu,
		"cpu_per": cpu / float64(n) * 1e6, "cpu_unit": "us/hs"}
	if known {
		m["client_resumed"] = resumed
	}
	out(m)
}

func idle(b backend, n int) {
	one := make([]byte, 1)
	c := b.connect()
	io.ReadFull(c, one)
	c.Close()
	runtime.GC()
	debug.FreeOSMemory()
	before := statusKiB("VmRSS:")
	held := make([]conn, 0, n)
	for i := 0; i < n; i++ {
		c := b.connect()
		io.ReadFull(c, one)
		held = append(held, c)
	}
	runtime.GC()
	debug.FreeOSMemory()
	after := statusKiB("VmRSS:")
	peak := statusKiB("VmHWM:")
	out(map[string]any{"value": (after - before) / float64(n), "unit": "KiB/conn", "rss_before_kib": before,
		"rss_after_kib": after, "peak_kib": peak})
	for _, c := range held {
		c.Close()
	}
}

func main() {
	if len(os.Args) < 3 {
		die("usage: go-peer tls|tu|cgo WORKLOAD key=value...")
	}
	kind, workload := os.Args[1], os.Args[2]
	for _, a := range os.Args[3:] {
		if k, v, ok := strings.Cut(a, "="); ok {
			args[k] = v
		}
	}
	port := int(intArg("port"))
	n := int(intArg("n"))
	var b backend
	switch kind {
	case "tls":
		if workload == "version" {
			out(map[string]any{"version": "Go " + runtime.Version() + " crypto/tls"})
			return
		}
		b = newStdBackend(port, args["ca"])
	case "tu", "cgo":
		b = tuBackend(kind, workload, port, args["ca"], n) // handles version and ffi itself
		if workload == "version" {
			return
		}
	default:
		die("unknown kind %s", kind)
	}
	switch workload {
	case "send":
		send(b, intArg("bytes"))
	case "recv":
		recv(b, intArg("bytes"))
	case "pingpong":
		c := b.connect()
		pingpong(c, n)
		c.Close()
	case "hs":
		handshakes(b, n, false)
	case "resume":
		handshakes(b, n, true)
	case "idle":
		idle(b, n)
	default:
		unsupported("workload " + workload + " not supported by the Go peer " + kind)
	}
}
