//go:build tubinding

package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include
#cgo LDFLAGS: ${SRCDIR}/../../../target/release/libtransporturl.a -lgcc_s -lutil -lrt -lpthread -lm -ldl
#include <stdlib.h>
#include "transporturl.h"
*/
import "C"

import (
	"fmt"
	"strconv"
	"time"
	"unsafe"

	"transporturl"
)

type tuB struct {
	url  string
	opts []transporturl.Option
}

func (b *tuB) connect() conn {
	c, err := transporturl.Dial(b.url, b.opts...)
	if err != nil {
		die("dial: %v", err)
	}
	return c
}

func (b *tuB) resumed(c conn) (bool, bool) { return false, false }
func (b *tuB) enableResume()               {}

func tuBackend(kind, workload string, port int, ca string, n int) backend {
	if workload == "version" {
		if kind == "cgo" {
			out(map[string]any{"version": "bare cgo call, libtransporturl " + C.GoString(C.tu_version())})
		} else {
			out(map[string]any{"version": "transporturl Go binding (libtransporturl " + transporturl.Version() + ")"})
		}
		return nil
	}
	if workload == "ffi" {
		if kind == "cgo" {
			ffiBare(port, n)
		} else {
			ffiBinding(port, n)
		}
		exitOK()
	}
	if kind == "cgo" {
		unsupported("the bare cgo peer only runs ffi")
	}
	return &tuB{
		url: "tlsv1.3://127.0.0.1:" + strconv.Itoa(port),
		opts: []transporturl.Option{
			transporturl.WithCAFile(ca),
			transporturl.WithPeerName("localhost"),
		},
	}
}

func ffiReport(t0 time.Time, c0 float64, n int) {
	wall := time.Since(t0).Seconds()
	cpu := cpuSeconds() - c0
	out(map[string]any{"value": cpu / float64(n) * 1e9, "wall_ns": wall / float64(n) * 1e9, "unit": "ns/call", "wall_s": wall, "cpu_s": cpu})
}

func ffiBinding(port, n int) {
	c, err := transporturl.Dial(fmt.Sprintf("udp://127.0.0.1:%d", port))
	if err != nil {
		die("dial: %v", err)
	}
	msg := make([]byte, 64)
	for i := 0; i < 1000; i++ {
		c.Write(msg)
	}
	t0, c0 := time.Now(), cpuSeconds()
	for i := 0; i < n; i++ {
		if _, err := c.Write(msg); err != nil {
			die("write: %v", err)
		}
	}
	ffiReport(t0, c0, n)
	c.Close()
}

// ffiBare: tu_write through cgo with nothing around it (the W7 baseline).
func ffiBare(port, n int) {
	url := C.CString(fmt.Sprintf("udp://127.0.0.1:%d", port))
	defer C.free(unsafe.Pointer(url))
	h := C.tu_connect(url, nil)
	if h == nil {
		die("tu_connect failed")
	}
	msg := make([]byte, 64)
	p := unsafe.Pointer(&msg[0])
	for i := 0; i < 1000; i++ {
		C.tu_write(h, p, 64)
	}
	t0, c0 := time.Now(), cpuSeconds()
	for i := 0; i < n; i++ {
		if C.tu_write(h, p, 64) != 64 {
			die("write")
		}
	}
	ffiReport(t0, c0, n)
	C.tu_close(h)
}
