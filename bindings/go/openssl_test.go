package transporturl

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// opensslServer runs `openssl s_server` on 127.0.0.1 with a free port for
// one connection and returns that port.
func opensslServer(t *testing.T, args ...string) int {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed")
	}
	p := testPKI(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	argv := append([]string{"s_server", "-accept", "127.0.0.1:0", "-cert", p.certFile, "-key", p.keyFile, "-naccept", "1"}, args...)
	cmd := exec.CommandContext(ctx, bin, argv...)
	stdin, _ := cmd.StdinPipe()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cancel()
		cmd.Wait()
	})
	accept := regexp.MustCompile(`^ACCEPT 127\.0\.0\.1:(\d+)`)
	lines := bufio.NewScanner(stdout)
	found := make(chan int, 1)
	go func() {
		defer close(found)
		for lines.Scan() {
			if m := accept.FindStringSubmatch(lines.Text()); m != nil {
				port, _ := strconv.Atoi(m[1])
				found <- port
				io.Copy(io.Discard, stdout)
				return
			}
		}
	}()
	select {
	case port, ok := <-found:
		if !ok {
			t.Fatal("openssl s_server ended without an ACCEPT line")
		}
		return port
	case <-time.After(10 * time.Second):
		t.Fatal("openssl s_server did not start")
	}
	return 0
}

func TestOpenSSLServer(t *testing.T) {
	p := testPKI(t)
	port := opensslServer(t, "-rev")
	c := mustDial(t, addrURL("tls", port), WithCAFile(p.caFile))
	c.SetDeadline(time.Now().Add(testTimeout))
	c.Write([]byte("hello from Go\n"))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "oG morf olleh\n" {
		t.Fatalf("s_server -rev answered %q, %v", line, err)
	}
	if s := c.ConnectionState(); s.Version != "TLSv1.3" || !s.PeerVerified {
		t.Errorf("ConnectionState %+v", s)
	}
}

func TestOpenSSLServerTLS12(t *testing.T) {
	p := testPKI(t)
	port := opensslServer(t, "-rev", "-tls1_2")
	c := mustDial(t, "tls://localhost:"+strconv.Itoa(port), WithCAFile(p.caFile))
	c.SetDeadline(time.Now().Add(testTimeout))
	c.Write([]byte("abc\n"))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "cba\n" {
		t.Fatalf("answered %q, %v", line, err)
	}
	s := c.ConnectionState()
	if s.Version != "TLSv1.2" || !strings.HasPrefix(s.CipherSuite, "TLS_ECDHE_") || s.ServerName != "localhost" {
		t.Errorf("ConnectionState %+v", s)
	}
}

// tlsv1.3:// against a server that only speaks TLS 1.2 fails the handshake.
func TestOpenSSLVersionMismatch(t *testing.T) {
	p := testPKI(t)
	port := opensslServer(t, "-tls1_2")
	_, err := Dial(addrURL("tlsv1.3", port), WithTimeout(testTimeout), WithCAFile(p.caFile))
	wantCode(t, err, CodeTLS, "")
}
