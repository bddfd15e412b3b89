package ingress

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"

	"golang.org/x/time/rate"

	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ingress/problem"
	"github.com/paystream/paystream/ingress/signing"
)

// MaxBody is the largest request body the API reads.
const MaxBody = 64 << 10

type channelKey struct{}

// channelFrom returns the authenticated channel of a request.
func channelFrom(ctx context.Context) channels.Channel {
	c, _ := ctx.Value(channelKey{}).(channels.Channel)
	return c
}

// authenticate verifies the request signature, the channel and its rate limit, and keeps
// the body for the handler (the signature covers it, so it is read here, once).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keyID := r.Header.Get(signing.HeaderKey)
		ts := r.Header.Get(signing.HeaderTimestamp)
		sig := r.Header.Get(signing.HeaderSignature)
		if keyID == "" || ts == "" || sig == "" {
			problem.Write(w, problem.New(http.StatusUnauthorized, "unauthenticated",
				"sign the request: headers "+signing.HeaderKey+", "+signing.HeaderTimestamp+" and "+signing.HeaderSignature+" are required"))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
		if err != nil {
			problem.Write(w, problem.New(http.StatusBadRequest, "unreadable_body", "the request body could not be read"))
			return
		}
		if len(body) > MaxBody {
			problem.Write(w, problem.New(http.StatusRequestEntityTooLarge, "body_too_large", "the body exceeds 64 KiB"))
			return
		}
		ch, err := s.channels.Lookup(r.Context(), keyID)
		switch {
		case errors.Is(err, channels.ErrUnknown):
			s.log.Info("refused request: unknown key", "key", keyID, "path", r.URL.Path)
			problem.Write(w, problem.New(http.StatusUnauthorized, "unknown_key", "no channel has this key"))
			return
		case errors.Is(err, channels.ErrRevoked):
			s.log.Info("refused request: revoked key", "key", keyID, "path", r.URL.Path)
			problem.Write(w, problem.New(http.StatusUnauthorized, "revoked_key", "this key was revoked"))
			return
		case err != nil:
			s.log.Error("looking up channel", "key", keyID, "err", err)
			problem.Write(w, problem.New(http.StatusServiceUnavailable, "unavailable", "authentication is unavailable, retry later"))
			return
		}
		if err := signing.Verify([]byte(ch.Secret), ts, r.Method, r.URL.RequestURI(), body, sig, s.now()); err != nil {
			code := "bad_signature"
			switch {
			case errors.Is(err, signing.ErrStale):
				code = "stale_timestamp"
			case errors.Is(err, signing.ErrBadTimestamp):
				code = "bad_timestamp"
			}
			s.log.Info("refused request: "+code, "key", keyID, "path", r.URL.Path)
			problem.Write(w, problem.New(http.StatusUnauthorized, code, err.Error()))
			return
		}
		if wait, ok := s.limits.allow(ch); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(wait))
			problem.Write(w, problem.New(http.StatusTooManyRequests, "rate_limited",
				"this channel is limited to "+strconv.Itoa(ch.RateLimit)+" requests per second"))
			return
		}
		r.Body = &readBody{Reader: bytes.NewReader(body), b: body}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), channelKey{}, ch)))
	})
}

// requireScope refuses channels without scope sc.
func requireScope(sc channels.Scope) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !channelFrom(r.Context()).Has(sc) {
				problem.Write(w, problem.New(http.StatusForbidden, "missing_scope", "this route needs the scope "+string(sc)))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// rateLimits holds a token bucket per channel in this process: a channel's limit is per
// ingress instance.
type rateLimits struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// allow takes a token for ch, or says how many seconds to wait for one.
func (l *rateLimits) allow(ch channels.Channel) (int, bool) {
	l.mu.Lock()
	lim, ok := l.m[ch.KeyID]
	if !ok || lim.Limit() != rate.Limit(ch.RateLimit) {
		lim = rate.NewLimiter(rate.Limit(ch.RateLimit), ch.RateLimit)
		l.m[ch.KeyID] = lim
	}
	l.mu.Unlock()
	res := lim.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return int(math.Ceil(d.Seconds())), false
	}
	return 0, true
}
