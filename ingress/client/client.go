// Package client is the Go client of the paystream API for channels: it signs every
// request and retries safely. A POST keeps one Idempotency-Key across its retries, so a
// retry can never create a second payment.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/paystream/paystream/ingress/problem"
	"github.com/paystream/paystream/ingress/signing"
)

// Credentials are what `paystream channels create` prints and `paystream dev` writes to
// <data>/dev-channel.json.
type Credentials struct {
	BaseURL string `json:"base_url"`
	KeyID   string `json:"key_id"`
	Secret  string `json:"secret"`
}

// Client calls the API as one channel.
type Client struct {
	creds Credentials
	http  *http.Client
	// MaxAttempts bounds tries per call (default 5); Backoff is the first wait (default
	// 100 ms), doubled each retry up to 2 s unless the server sends Retry-After.
	MaxAttempts int
	Backoff     time.Duration
	now         func() time.Time
}

// New returns a client for creds.
func New(creds Credentials) *Client {
	return &Client{creds: creds, http: &http.Client{Timeout: 40 * time.Second}, MaxAttempts: 5, Backoff: 100 * time.Millisecond, now: time.Now}
}

// FromFile reads credentials from a JSON file in the dev-channel.json format.
func FromFile(path string) (*Client, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("reading credentials %s: %w", path, err)
	}
	if c.BaseURL == "" || c.KeyID == "" || c.Secret == "" {
		return nil, fmt.Errorf("credentials %s need base_url, key_id and secret", path)
	}
	return New(c), nil
}

// KeyID returns the channel key the client signs with.
func (c *Client) KeyID() string { return c.creds.KeyID }

// WithHTTPClient replaces the HTTP client (timeouts, transport).
func (c *Client) WithHTTPClient(h *http.Client) *Client { c.http = h; return c }

// Error is an answer of 400 or above; Problem is its problem+json document when it had one.
type Error struct {
	Status  int
	Problem *problem.Problem
}

func (e *Error) Error() string {
	if e.Problem != nil {
		return fmt.Sprintf("paystream: %d %s: %s", e.Status, e.Problem.Code, e.Problem.Detail)
	}
	return fmt.Sprintf("paystream: HTTP %d", e.Status)
}

// Code returns the problem code of err, or "".
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Problem != nil {
		return e.Problem.Code
	}
	return ""
}

// Response is a successful answer.
type Response struct {
	Status   int
	Header   http.Header
	Body     []byte
	Replayed bool // the server answered from its idempotency record
}

// NewIdempotencyKey returns a random key.
func NewIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Do sends a request and decodes a 2xx JSON answer into out (if not nil). body is
// marshalled to JSON unless it is a []byte. A POST without idemKey gets a fresh one, kept
// across retries. It retries network errors, 409 request_in_progress, 429 and 5xx.
func (c *Client) Do(ctx context.Context, method, path string, body any, idemKey string, out any, header ...http.Header) (*Response, error) {
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			return nil, err
		}
	}
	if method == http.MethodPost && idemKey == "" {
		idemKey = NewIdempotencyKey()
	}
	wait := c.Backoff
	var lastErr error
	for attempt := 1; attempt <= c.MaxAttempts; attempt++ {
		resp, retryAfter, err := c.once(ctx, method, path, raw, idemKey, header)
		if err == nil {
			if out != nil && len(resp.Body) > 0 {
				if err := json.Unmarshal(resp.Body, out); err != nil {
					return resp, fmt.Errorf("decoding answer: %w", err)
				}
			}
			return resp, nil
		}
		lastErr = err
		if !retryable(err) || attempt == c.MaxAttempts {
			break
		}
		d := wait
		if retryAfter > 0 {
			d = retryAfter
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d):
		}
		wait = min(wait*2, 2*time.Second)
	}
	return nil, lastErr
}

func retryable(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return true // a network error: the request may or may not have arrived; the key makes a retry safe
	}
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 ||
		(e.Status == http.StatusConflict && e.Problem != nil && e.Problem.Code == "request_in_progress")
}

func (c *Client) once(ctx context.Context, method, path string, body []byte, idemKey string, extra []http.Header) (*Response, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.creds.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	ts := strconv.FormatInt(c.now().Unix(), 10)
	req.Header.Set(signing.HeaderKey, c.creds.KeyID)
	req.Header.Set(signing.HeaderTimestamp, ts)
	req.Header.Set(signing.HeaderSignature, signing.Sign([]byte(c.creds.Secret), ts, method, req.URL.RequestURI(), body))
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	for _, h := range extra {
		for k, v := range h {
			req.Header[k] = v
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode >= 400 {
		e := &Error{Status: resp.StatusCode}
		var p problem.Problem
		if json.Unmarshal(b, &p) == nil && p.Code != "" {
			e.Problem = &p
		}
		var ra time.Duration
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			ra = time.Duration(s) * time.Second
		}
		return nil, ra, e
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b, Replayed: resp.Header.Get("Idempotent-Replayed") == "true"}, 0, nil
}
