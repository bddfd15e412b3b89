// Package ingress is the HTTP API channels call: authentication, idempotency, request
// validation, and later payments, status and webhooks. It never writes ledger tables; it
// talks to the pipeline through Kafka and to the ledger through its library.
package ingress

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"

	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ingress/openapi"
	"github.com/paystream/paystream/ingress/problem"
	"github.com/paystream/paystream/ingress/webhooks"
	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/schemas"
)

// Config is what the server needs.
type Config struct {
	Pool   *pgxpool.Pool
	Ledger *ledger.Ledger
	// Subsidiary new wallets belong to.
	Subsidiary string
	Channels   *channels.Store
	Webhooks   *webhooks.Dispatcher
	// Producer writes payments.requested; it must be idempotent with acks=all (the
	// franz-go defaults), since a channel is answered only once Kafka has its request.
	Producer *kgo.Client
	Serde    *schemas.Serde
	// FeePreview computes the fee lines of a payment with the fee stage's code.
	FeePreview func(context.Context, *schemas.Payment) ([]schemas.FeeLine, error)
	Log        *slog.Logger
	// Ready reports whether the server's dependencies answer; /readyz calls it.
	Ready func(context.Context) error
	// Now is the clock for signature timestamps; nil is time.Now.
	Now func() time.Time
	// Metrics is where the API registers its Prometheus metrics (requests, latency, the
	// steps of accepting a payment); nil keeps them unregistered.
	Metrics prometheus.Registerer
}

// Server is the API.
type Server struct {
	pool       *pgxpool.Pool
	ledger     *ledger.Ledger
	subsidiary string
	channels   *channels.Store
	webhooks   *webhooks.Dispatcher
	producer   *kgo.Client
	serde      *schemas.Serde
	waiters    waiters
	claims     *claims
	answers    *groups[keptAnswer]
	delayed    *delayedAnswers
	closing    sync.Once
	keyPool    *pgxpool.Pool // generic plans: for statements that insert and probe keys
	ownPool    *pgxpool.Pool // keyPool when it could be opened
	feePreview func(context.Context, *schemas.Payment) ([]schemas.FeeLine, error)
	log        *slog.Logger
	ready      func(context.Context) error
	now        func() time.Time
	limits     *rateLimits
	router     chi.Router
	metrics    *metrics
}

// NewServer builds the API's router. It fails only when its metrics cannot be registered.
func NewServer(cfg Config) (*Server, error) {
	s := &Server{pool: cfg.Pool, ledger: cfg.Ledger, subsidiary: cfg.Subsidiary, channels: cfg.Channels, webhooks: cfg.Webhooks, producer: cfg.Producer, serde: cfg.Serde, feePreview: cfg.FeePreview, log: cfg.Log, ready: cfg.Ready, now: cfg.Now,
		limits: &rateLimits{m: map[string]*rate.Limiter{}}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.pool != nil {
		// The claims, the stored answers and the outcomes only insert and probe keys, so
		// a generic plan suits them whatever the tables hold; planning them afresh for
		// every group (pgpool's default) cost more than running the claims, and about a
		// tenth of the outcomes' and the answers' time (pg_stat_statements, 30 s closed
		// loop: 0.3 and 0.5 s of planning against 5.4 and 2.4 s of execution). Left to
		// choose (plan_cache_mode=auto), PostgreSQL went on planning a third of the claims
		// in one run at 2,500/s (4,023 plans for 10,890 calls, 0.76 s in 24 s).
		cfg := s.pool.Config()
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
		cfg.MaxConns = claimWriters + answerWriters + 1 // one for the outcomes
		s.keyPool = s.pool
		if p, err := pgxpool.NewWithConfig(context.Background(), cfg); err == nil {
			s.keyPool, s.ownPool = p, p
		} else {
			s.log.Warn("no pool of its own for the key statements", "err", err)
		}
		s.claims = newClaims(s.keyPool, claimWriters)
		s.answers = newGroups(answerWriters, maxAnswerGroup, answerLinger, s.writeAnswers)
		s.delayed = newDelayedAnswers(s.answers.add)
	}
	if s.webhooks == nil {
		s.webhooks = webhooks.NewDispatcher(s.pool, s.channels, s.log)
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("registering the API's metrics: %w", err)
	}
	s.metrics = m
	r := chi.NewRouter()
	r.Use(m.observe)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, problem.New(http.StatusNotFound, "not_found", "no route "+r.Method+" "+r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, problem.New(http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path))
	})
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", s.readyz)
	r.Get("/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.Document)
	})
	r.Route("/v1", func(r chi.Router) {
		r.Use(s.authenticate)
		s.v1(r)
	})
	s.router = r
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			problem.Write(w, problem.New(http.StatusServiceUnavailable, "not_ready", err.Error()))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// RunMaintenance delivers webhooks and purges expired idempotency keys until ctx ends.
func (s *Server) RunMaintenance(ctx context.Context) {
	go s.webhooks.Run(ctx, 200*time.Millisecond)
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := s.PurgeIdempotencyKeys(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("purging idempotency keys", "err", err)
		} else if n > 0 {
			s.log.Info("purged idempotency keys", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// How many groups may be written at once. One claim writer: the next group forms while
// the previous one commits, and fewer, larger commits leave more of the machine to the
// rest. Against two, in three alternating pairs of 45-second P2P runs at 2,500/s, outcome
// p99 fell from 667 / 347 / 320 ms to 273 / 303 / 234 ms and the machine's CPU a payment
// from 0.766 / 0.753 / 0.765 ms to 0.741 / 0.720 / 0.751; the ingress benchmark gave
// 6,473-6,666 accepted/s against 6,348-6,476.
const (
	claimWriters  = 1
	answerWriters = 1
)

// answerLinger is how long the answer writer waits for more answers after the first: no
// request waits for an answer to be kept (a retry meanwhile waits for it), so a group may
// gather for a while and share one statement.
const answerLinger = 20 * time.Millisecond

// Close keeps the answers the server holds and releases its own connections and
// goroutines; the pool given in Config stays open. A second Close does nothing.
func (s *Server) Close() {
	s.closing.Do(func() {
		if s.claims != nil {
			s.claims.groups.close()
			s.delayed.close()
			s.answers.close()
		}
		if s.ownPool != nil {
			s.ownPool.Close()
		}
	})
}
