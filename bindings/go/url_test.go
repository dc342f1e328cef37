package transporturl

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// vectorCase is one case of tests/vectors/*.json.
type vectorCase struct {
	URL             *string         `json:"url"`
	URLHex          *string         `json:"url_hex"`
	Host            *string         `json:"host"` // fsockopen.json: the address
	Port            *int            `json:"port"` // fsockopen.json: 0 = none
	OK              *vectorOK       `json:"ok"`
	Error           string          `json:"error"`
	MessageContains string          `json:"message_contains"`
	Note            json.RawMessage `json:"note"`
}

type vectorOK struct {
	Transport      string  `json:"transport"`
	Host           *string `json:"host"`
	Port           *int    `json:"port"`
	ExplicitScheme bool    `json:"explicit_scheme"`
	Path           *string `json:"path"`
}

func loadVectors(t *testing.T, name string) []vectorCase {
	t.Helper()
	data, err := os.ReadFile(repo + "/tests/vectors/" + name)
	if err != nil {
		t.Fatalf("reading the shared vectors: %v", err)
	}
	var cases []vectorCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cases
}

// check compares a parse result with a case; "" when they agree.
func (c vectorCase) check(u *URL, err error) string {
	if c.OK != nil {
		if err != nil {
			return "want ok, got " + err.Error()
		}
		var diffs []string
		want := c.OK
		if u.Transport != want.Transport {
			diffs = append(diffs, "transport "+strconv.Quote(u.Transport)+" != "+strconv.Quote(want.Transport))
		}
		wantHost := ""
		if want.Host != nil {
			wantHost = *want.Host
		}
		if u.Host != wantHost {
			diffs = append(diffs, "host "+strconv.Quote(u.Host)+" != "+strconv.Quote(wantHost))
		}
		wantPort := 0 // C: 0 = none
		if want.Port != nil {
			wantPort = *want.Port
		}
		if u.Port != wantPort {
			diffs = append(diffs, "port "+strconv.Itoa(u.Port)+" != "+strconv.Itoa(wantPort))
		}
		if u.ExplicitScheme != want.ExplicitScheme {
			diffs = append(diffs, "explicit_scheme "+strconv.FormatBool(u.ExplicitScheme))
		}
		wantPath := ""
		if want.Path != nil {
			wantPath = *want.Path
		}
		if u.Path != wantPath {
			diffs = append(diffs, "path "+strconv.Quote(u.Path)+" != "+strconv.Quote(wantPath))
		}
		return strings.Join(diffs, "; ")
	}
	if c.Error == "" {
		return "case has neither ok nor error"
	}
	if err == nil {
		return "want " + c.Error + ", got ok"
	}
	var e *Error
	if !errors.As(err, &e) {
		return "not a *Error: " + err.Error()
	}
	if e.Code.Name() != c.Error {
		return "want " + c.Error + ", got " + err.Error()
	}
	if !strings.Contains(e.Msg, c.MessageContains) {
		return "message " + strconv.Quote(e.Msg) + " lacks " + strconv.Quote(c.MessageContains)
	}
	return ""
}

func TestURLVectors(t *testing.T) {
	cases := loadVectors(t, "urls.json")
	if len(cases) < 100 {
		t.Fatalf("only %d URL vectors", len(cases))
	}
	failed := 0
	for i, c := range cases {
		var input, label string
		switch {
		case c.URLHex != nil:
			b, err := hex.DecodeString(*c.URLHex)
			if err != nil {
				t.Fatalf("case %d: bad url_hex: %v", i, err)
			}
			input, label = string(b), "url_hex "+*c.URLHex
		case c.URL != nil:
			input, label = *c.URL, strconv.Quote(*c.URL)
		default:
			t.Fatalf("case %d has no url", i)
		}
		u, err := ParseURL(input)
		if d := c.check(u, err); d != "" {
			failed++
			t.Errorf("%s: %s", label, d)
		}
	}
	t.Logf("%d URL vectors, %d failed", len(cases), failed)
}

// TestFsockopenVectors runs fsockopen.json through ParseHost, and its
// error cases through DialHost too (they fail before any connect).
func TestFsockopenVectors(t *testing.T) {
	cases := loadVectors(t, "fsockopen.json")
	if len(cases) < 12 {
		t.Fatalf("only %d fsockopen vectors", len(cases))
	}
	for _, c := range cases {
		if c.Host == nil || c.Port == nil {
			t.Fatalf("fsockopen case without host or port: %+v", c)
		}
		u, err := ParseHost(*c.Host, *c.Port)
		if d := c.check(u, err); d != "" {
			t.Errorf("ParseHost(%q, %d): %s", *c.Host, *c.Port, d)
		}
		if c.OK != nil {
			continue
		}
		conn, err := DialHost(*c.Host, *c.Port, WithTimeout(testTimeout))
		if conn != nil {
			conn.Close()
		}
		if d := c.check(nil, err); d != "" {
			t.Errorf("DialHost(%q, %d): %s", *c.Host, *c.Port, d)
		}
	}
}

func TestParseURLRejectsNUL(t *testing.T) {
	_, err := ParseURL("tcp://127.0.0.1:80\x00evil")
	wantCode(t, err, CodeInvalidArgument, "NUL byte at offset 18")
}
