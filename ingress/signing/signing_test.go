package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestSignMatchesTheDocumentedScheme(t *testing.T) {
	// Computed step by step from the documented formula, independently of Sign.
	secret := []byte("s3cret")
	body := []byte(`{"a":1}`)
	bodySum := sha256.Sum256(body)
	sts := "1700000000\nPOST\n/v1/payments?x=1\n" + hex.EncodeToString(bodySum[:])
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(sts))
	want := hex.EncodeToString(m.Sum(nil))
	if got := Sign(secret, "1700000000", "POST", "/v1/payments?x=1", body); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	empty := sha256.Sum256(nil)
	if got := StringToSign("1", "GET", "/v1/x", nil); got != "1\nGET\n/v1/x\n"+hex.EncodeToString(empty[:]) {
		t.Errorf("empty body string to sign %q", got)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("k")
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte("{}")
	good := Sign(secret, ts, "POST", "/v1/p", body)
	tests := []struct {
		name      string
		secret    []byte
		ts        string
		method    string
		path      string
		body      string
		signature string
		want      error
	}{
		{"good", secret, ts, "POST", "/v1/p", "{}", good, nil},
		{"299 s late", secret, strconv.FormatInt(now.Unix()-299, 10), "POST", "/v1/p", "{}", "", nil},
		{"301 s late", secret, strconv.FormatInt(now.Unix()-301, 10), "POST", "/v1/p", "{}", "", ErrStale},
		{"301 s early", secret, strconv.FormatInt(now.Unix()+301, 10), "POST", "/v1/p", "{}", "", ErrStale},
		{"not a number", secret, "yesterday", "POST", "/v1/p", "{}", good, ErrBadTimestamp},
		{"other body", secret, ts, "POST", "/v1/p", "{ }", good, ErrBadSignature},
		{"other path", secret, ts, "POST", "/v1/q", "{}", good, ErrBadSignature},
		{"other method", secret, ts, "PUT", "/v1/p", "{}", good, ErrBadSignature},
		{"other secret", []byte("j"), ts, "POST", "/v1/p", "{}", good, ErrBadSignature},
		{"uppercase hex", secret, ts, "POST", "/v1/p", "{}", upper(good), ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := tt.signature
			if sig == "" {
				sig = Sign(tt.secret, tt.ts, tt.method, tt.path, []byte(tt.body))
			}
			err := Verify(tt.secret, tt.ts, tt.method, tt.path, []byte(tt.body), sig, now)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 32
		}
	}
	return string(b)
}
