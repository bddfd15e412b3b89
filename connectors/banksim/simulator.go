// Package banksim is a bank simulator: an HTTP server that collects and pays out money
// with configurable latency and failure rate, idempotent by request id, and the connector
// that talks to it. Tests and `paystream dev` run it in-process on loopback.
package banksim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/shopspring/decimal"
)

// Options configure the simulator.
type Options struct {
	// Latency is added to every answer.
	Latency time.Duration
	// FailureRate is the share of requests refused (0 to 1). Which requests fail is a
	// function of their id, so a retried request gets the same answer.
	FailureRate float64
	// FailAmount, when set, refuses every request of exactly this amount: tests use it to
	// pick the failing request.
	FailAmount decimal.Decimal
}

// Request is what the bank receives.
type Request struct {
	ID        string `json:"id"` // the idempotency key
	Operation string `json:"operation"`
	Amount    string `json:"amount"`
	Currency  string `json:"currency"`
	Account   string `json:"account"`
}

// Response is what it answers.
type Response struct {
	Status    string `json:"status"` // succeeded or failed
	Reference string `json:"reference"`
	Reason    string `json:"reason,omitempty"`
}

// Simulator is a running bank.
type Simulator struct {
	opts  Options
	srv   *http.Server
	addr  string
	mu    sync.Mutex
	seen  map[string]Response
	calls int
}

// Start serves the simulator on addr (host:port; port 0 picks one).
func Start(addr string, opts Options) (*Simulator, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bank simulator: %w", err)
	}
	s := &Simulator{opts: opts, addr: ln.Addr().String(), seen: map[string]Response{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /transfers", s.transfer)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the simulator's base URL.
func (s *Simulator) URL() string { return "http://" + s.addr }

// Close stops the simulator.
func (s *Simulator) Close() error { return s.srv.Close() }

// Calls is how many requests reached the bank, retries included.
func (s *Simulator) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Executed is how many distinct requests the bank executed.
func (s *Simulator) Executed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *Simulator) transfer(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil || req.ID == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if s.opts.Latency > 0 {
		select {
		case <-time.After(s.opts.Latency):
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	s.calls++
	resp, ok := s.seen[req.ID]
	if !ok {
		resp = s.decide(req)
		s.seen[req.ID] = resp
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (s *Simulator) decide(req Request) Response {
	sum := sha256.Sum256([]byte(req.ID))
	ref := fmt.Sprintf("SIM%016x", binary.BigEndian.Uint64(sum[:8]))
	amount, _ := decimal.NewFromString(req.Amount)
	roll := float64(binary.BigEndian.Uint64(sum[8:16])%10_000) / 10_000
	if (!s.opts.FailAmount.IsZero() && amount.Equal(s.opts.FailAmount)) || roll < s.opts.FailureRate {
		return Response{Status: "failed", Reference: ref, Reason: "bank_declined"}
	}
	return Response{Status: "succeeded", Reference: ref}
}

// Client is a connector that talks to a bank simulator (or a bank with its API).
type Client struct {
	name string
	base string
	http *http.Client
}

// NewClient returns a connector named name for the bank at baseURL.
func NewClient(name, baseURL string) *Client {
	return &Client{name: name, base: baseURL, http: &http.Client{Timeout: 10 * time.Second}}
}

// Name is the connector's name.
func (c *Client) Name() string { return c.name }

// Do sends a request; an error means the bank could not be reached or answered garbage.
func (c *Client) Do(ctx context.Context, req Request) (Response, error) {
	b, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/transfers", bytesReader(b))
	if err != nil {
		return Response{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(hr)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Response{}, fmt.Errorf("bank answered HTTP %d", resp.StatusCode)
	}
	var out Response
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return Response{}, fmt.Errorf("decoding bank answer: %w", err)
	}
	return out, nil
}
