package transporturl_test

import (
	"fmt"
	"io"
	"log"
	"net"
	"strconv"

	"transporturl"
)

// Dial a transport URL and use the connection as any net.Conn.
func ExampleDial() {
	// A tiny echo server on a free port of 127.0.0.1.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	conn, err := transporturl.Dial("tcp://127.0.0.1:" + strconv.Itoa(port))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "hello\n")
	buf := make([]byte, 6)
	if _, err := io.ReadFull(conn, buf); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", buf)
	// Output: "hello\n"
}

// Errors carry the library's code and message; they match with errors.Is.
func ExampleParseURL() {
	u, err := transporturl.ParseURL("tls://[::1]:8443")
	fmt.Println(u.Transport, u.Host, u.Port, err)

	_, err = transporturl.ParseURL("tcp://127.0.0.1:65536")
	fmt.Println(err)
	// Output:
	// tls ::1 8443 <nil>
	// transporturl parse: port 65536 out of range (1..65535) at offset 15 (TU_E_URL)
}
