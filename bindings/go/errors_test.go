package transporturl

import (
	"context"
	"errors"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestCodesMatchHeader compares every Code constant with the header's
// TU_OK / TU_E_* defines, by name and value, and with tu_code_name.
func TestCodesMatchHeader(t *testing.T) {
	text, err := os.ReadFile(repo + "/include/transporturl.h")
	if err != nil {
		t.Skipf("header not found (pkg-config build?): %v", err)
	}
	re := regexp.MustCompile(`(?m)^#define (TU_OK|TU_E_[A-Z0-9_]+) (\d+)\s*$`)
	header := map[string]Code{}
	for _, m := range re.FindAllStringSubmatch(string(text), -1) {
		v, _ := strconv.Atoi(m[2])
		header[m[1]] = Code(v)
	}
	if len(header) < 17 {
		t.Fatalf("found only %d codes in the header", len(header))
	}
	ours := map[string]Code{}
	for _, c := range allCodes {
		name := c.Name()
		if name == "" {
			t.Errorf("tu_code_name(%d) is NULL for a Go constant", int32(c))
			continue
		}
		if _, dup := ours[name]; dup {
			t.Errorf("%s listed twice", name)
		}
		ours[name] = c
		if c.String() != name {
			t.Errorf("String() = %q, want %q", c.String(), name)
		}
		if c.Error() == "" || c.Error() == "unknown error code" {
			t.Errorf("%s has no description: %q", name, c.Error())
		}
	}
	var names []string
	for n := range header {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v, ok := ours[n]
		switch {
		case !ok:
			t.Errorf("header code %s = %d has no Go constant", n, header[n])
		case v != header[n]:
			t.Errorf("%s: Go %d, header %d", n, v, header[n])
		}
	}
	for n := range ours {
		if _, ok := header[n]; !ok {
			t.Errorf("Go constant %s is not in the header", n)
		}
	}
	if Code(9999).Name() != "" || !strings.Contains(Code(9999).String(), "9999") {
		t.Errorf("unknown code: Name %q String %q", Code(9999).Name(), Code(9999).String())
	}
}

func TestVersion(t *testing.T) {
	if Version() != HeaderVersion {
		t.Errorf("library %q, header %q", Version(), HeaderVersion)
	}
}

func TestErrorMatching(t *testing.T) {
	timeout := newError(CodeTimeout, "read", "read timed out")
	var ne net.Error
	if !errors.As(error(timeout), &ne) || !ne.Timeout() {
		t.Error("a timeout is not a net.Error with Timeout()")
	}
	if !errors.Is(timeout, os.ErrDeadlineExceeded) {
		t.Error("timeout does not match os.ErrDeadlineExceeded")
	}
	if !errors.Is(timeout, CodeTimeout) || errors.Is(timeout, CodeIO) {
		t.Error("timeout matches the wrong codes")
	}
	if !errors.Is(timeout, &Error{Code: CodeTimeout}) {
		t.Error("timeout does not match &Error{Code: CodeTimeout}")
	}
	refused := newError(CodeRefused, "dial", "connection refused")
	if !errors.Is(refused, syscall.ECONNREFUSED) || refused.Timeout() {
		t.Error("refused does not match syscall.ECONNREFUSED")
	}
	if errors.Is(refused, os.ErrDeadlineExceeded) {
		t.Error("refused matches os.ErrDeadlineExceeded")
	}
	ctxErr := contextError("dial", context.Canceled)
	if !errors.Is(ctxErr, context.Canceled) {
		t.Error("canceled dial does not match context.Canceled")
	}
	got := refused.Error()
	if !strings.Contains(got, "dial") || !strings.Contains(got, "connection refused") || !strings.Contains(got, "TU_E_REFUSED") {
		t.Errorf("Error() = %q", got)
	}
}
