package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// syncTransport is the bench's HTTP/1.1 transport for plain-http targets: a request is
// written and its answer read on the caller's goroutine, over a kept-alive connection from
// an idle pool. The bench shares the machine with what it measures, and net/http's
// Transport spends about a third of the bench's CPU handing each request to a connection's
// writer goroutine and its answer back from a reader goroutine; here there are no
// goroutines to hand over to. Requests and answers are still written and parsed by
// net/http (Request.Write, ReadResponse), so chunked answers and Connection: close behave
// as they do for channels. Other schemes go to other, net/http's Transport.
type syncTransport struct {
	dialer  net.Dialer
	maxIdle int // per address
	other   http.RoundTripper

	mu   sync.Mutex
	idle map[string][]*syncConn
}

type syncConn struct {
	net.Conn
	addr  string
	br    *bufio.Reader
	bw    *bufio.Writer
	until time.Time // the connection's deadline when no request context set one
}

// timeout bounds a request whose context has no deadline.
const timeout = time.Minute

func newSyncTransport(maxIdle int) *syncTransport {
	return &syncTransport{dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle: max(maxIdle, 1), idle: map[string][]*syncConn{},
		other: &http.Transport{MaxIdleConnsPerHost: maxIdle}}
}

// RoundTrip sends req. A request that fails on a kept-alive connection before any byte
// of its answer came back (the server closed the connection while it was idle) is sent
// once more on a new connection when its body can be read again. The server may have
// taken the first one; every request the bench sends is safe to repeat (a POST carries
// its Idempotency-Key), as net/http's Transport also assumes of such requests.
func (t *syncTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return t.other.RoundTrip(req)
	}
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	for {
		c, reused, err := t.conn(req.Context(), addr)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(c, req)
		if err == nil {
			return resp, nil
		}
		_ = c.Close()
		if !reused || req.Context().Err() != nil || !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isConnFailure(err) {
			return nil, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, err
			}
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

func (t *syncTransport) exchange(c *syncConn, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
		c.until = time.Time{}
	} else if now := time.Now(); c.until.Sub(now) < timeout/2 {
		// Setting a deadline costs a timer update; a connection's is pushed on only when
		// half of it is gone, so an answer that never comes is given up after 30-60 s.
		c.until = now.Add(timeout)
		_ = c.SetDeadline(c.until)
	}
	// A cancelled request expires its connection's deadline, which ends a write or a read
	// in progress; the connection is then closed, not kept.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	if err := req.Write(c.bw); err != nil {
		stop()
		return nil, ctxErr(ctx, err)
	}
	if err := c.bw.Flush(); err != nil {
		stop()
		return nil, ctxErr(ctx, err)
	}
	// Peeking first tells a connection that ended before its answer began (io.EOF, worth
	// sending again) from one that ended within it (ReadResponse's ErrUnexpectedEOF).
	if _, err := c.br.Peek(1); err != nil {
		stop()
		return nil, ctxErr(ctx, err)
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		stop()
		return nil, ctxErr(ctx, err)
	}
	resp.Body = &syncBody{ReadCloser: resp.Body, t: t, c: c, keep: !resp.Close && !req.Close, stop: stop}
	return resp, nil
}

// conn takes an idle connection to addr or dials one.
func (t *syncTransport) conn(ctx context.Context, addr string) (*syncConn, bool, error) {
	t.mu.Lock()
	if cs := t.idle[addr]; len(cs) > 0 {
		c := cs[len(cs)-1]
		t.idle[addr] = cs[:len(cs)-1]
		t.mu.Unlock()
		return c, true, nil
	}
	t.mu.Unlock()
	nc, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &syncConn{Conn: nc, addr: addr, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc)}, false, nil
}

// release keeps c for the next request, or closes it when the pool is full.
func (t *syncTransport) release(c *syncConn) {
	if c.until.IsZero() && c.SetDeadline(time.Time{}) != nil {
		_ = c.Close()
		return
	}
	t.mu.Lock()
	if cs := t.idle[c.addr]; len(cs) < t.maxIdle {
		t.idle[c.addr] = append(cs, c)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	_ = c.Close()
}

// CloseIdleConnections closes the kept connections, as http.Client.CloseIdleConnections
// asks of its transport.
func (t *syncTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*syncConn{}
	t.mu.Unlock()
	if o, ok := t.other.(interface{ CloseIdleConnections() }); ok {
		o.CloseIdleConnections()
	}
	for _, cs := range idle {
		for _, c := range cs {
			_ = c.Close()
		}
	}
}

// syncBody gives its connection back once the answer has been read to its end; closed
// before that, the connection is closed, for what is left of the answer is still on it.
type syncBody struct {
	io.ReadCloser
	t    *syncTransport
	c    *syncConn
	keep bool
	stop func() bool
	done bool
}

func (b *syncBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.finish(err == io.EOF)
	}
	return n, err
}

func (b *syncBody) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *syncBody) finish(complete bool) {
	b.done = true
	// stop reports false once the cancellation has fired: the deadline is spoilt.
	if b.stop() && complete && b.keep {
		b.t.release(b.c)
		return
	}
	_ = b.c.Close()
}

// ctxErr names the context's end as the cause of err. The connection's deadline may pass
// a moment before the context's own timer says so.
func ctxErr(ctx context.Context, err error) error {
	cause := ctx.Err()
	if d, ok := ctx.Deadline(); cause == nil && ok && !time.Now().Before(d) {
		cause = context.DeadlineExceeded
	}
	if cause != nil {
		return fmt.Errorf("%w (%w)", cause, err)
	}
	return err
}

// isConnFailure reports a network error other than a timeout: a reset, a broken pipe, a
// refused write on a connection the server had closed.
func isConnFailure(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}
