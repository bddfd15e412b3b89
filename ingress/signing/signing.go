// Package signing is the request signature of the paystream API, shared by the server
// that verifies it, the Go client that makes it and the webhooks that paystream sends:
//
//	string_to_sign = timestamp + "\n" + METHOD + "\n" + path-with-query + "\n" + hex(sha256(body))
//	signature      = hex(hmac_sha256(secret, string_to_sign))
//
// carried in the headers X-Paystream-Key, X-Paystream-Timestamp and X-Paystream-Signature.
package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"
)

// Header names.
const (
	HeaderKey       = "X-Paystream-Key"
	HeaderTimestamp = "X-Paystream-Timestamp"
	HeaderSignature = "X-Paystream-Signature"
)

// MaxSkew is how far a request's timestamp may be from the server's clock.
const MaxSkew = 300 * time.Second

// Errors of Verify; none of them says anything about the secret.
var (
	ErrBadTimestamp = errors.New("timestamp is not unix seconds")
	ErrStale        = errors.New("timestamp is more than 300 s from the server's clock")
	ErrBadSignature = errors.New("signature does not match")
)

// StringToSign builds the signed string of a request.
func StringToSign(timestamp, method, pathWithQuery string, body []byte) string {
	sum := sha256.Sum256(body)
	return timestamp + "\n" + method + "\n" + pathWithQuery + "\n" + hex.EncodeToString(sum[:])
}

// Sign returns the lowercase hex signature of a request.
func Sign(secret []byte, timestamp, method, pathWithQuery string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(StringToSign(timestamp, method, pathWithQuery, body)))
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a request's timestamp against now and its signature against secret, in
// constant time.
func Verify(secret []byte, timestamp, method, pathWithQuery string, body []byte, signature string, now time.Time) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxSkew || d < -MaxSkew {
		return ErrStale
	}
	want := Sign(secret, timestamp, method, pathWithQuery, body)
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return ErrBadSignature
	}
	return nil
}
