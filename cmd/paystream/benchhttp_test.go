package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer answers a request with its method, path and body, flushing first (a chunked
// answer) when the path says so, and counts the connections it accepts.
func echoServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush()
		}
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func roundTrip(t *testing.T, c *http.Client, url, body string) (string, *http.Response) {
	t.Helper()
	resp, err := c.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return string(b), resp
}

func TestSyncTransportKeepsConnections(t *testing.T) {
	srv, conns := echoServer(t)
	c := &http.Client{Transport: newSyncTransport(4)}
	for i, path := range []string{"/a", "/chunked", "/b", "/chunked", "/c"} {
		body := fmt.Sprintf("payment %d", i)
		got, resp := roundTrip(t, c, srv.URL+path, body)
		if want := "POST " + path + " " + body; got != want || resp.StatusCode != http.StatusOK {
			t.Fatalf("answer %d: %d %q, want 200 %q", i, resp.StatusCode, got, want)
		}
		if path == "/chunked" && len(resp.TransferEncoding) == 0 {
			t.Fatalf("%s was not chunked: %v", path, resp.Header)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for five requests in a row, want 1", n)
	}
}

func TestSyncTransportDropsClosedConnections(t *testing.T) {
	srv, conns := echoServer(t)
	tr := newSyncTransport(4)
	c := &http.Client{Transport: tr}

	// The server says it closes: the next request takes a new connection.
	roundTrip(t, c, srv.URL+"/close", "x")
	roundTrip(t, c, srv.URL+"/a", "y")
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after an answer with Connection: close, want 2", n)
	}

	// The server drops the kept connection without a word: the request goes out again on
	// a new one, body and all.
	srv.CloseClientConnections()
	if got, _ := roundTrip(t, c, srv.URL+"/after", "the body"); got != "POST /after the body" {
		t.Fatalf("after the server dropped the connection: %q", got)
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}

	// An answer closed before its end leaves its connection closed, not kept.
	resp, err := c.Post(srv.URL+"/a", "text/plain", strings.NewReader("z"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if idle := len(tr.idle[srv.Listener.Addr().String()]); idle != 0 {
		t.Fatalf("%d idle connections after an unread answer, want 0", idle)
	}
	roundTrip(t, c, srv.URL+"/a", "w")
	if n := conns.Load(); n != 4 {
		t.Fatalf("%d connections, want 4", n)
	}
}

func TestSyncTransportCancels(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	tr := newSyncTransport(4)
	c := &http.Client{Transport: tr}

	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL, strings.NewReader("x"))
			start := time.Now()
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("a request to a server that never answers succeeded")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("gave up after %v", d)
			}
			if idle := len(tr.idle[srv.Listener.Addr().String()]); idle != 0 {
				t.Fatalf("%d idle connections after a cancelled request, want 0", idle)
			}
		})
	}
}
