package ingress

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus metrics.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	steps    *prometheus.HistogramVec
}

// Steps of accepting a payment, timed apart because each waits on a different system.
const (
	stepClaim   = "claim"   // the key and status row, in a group commit with other requests
	stepProduce = "produce" // payments.requested, until Kafka acknowledges it
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "paystream", Subsystem: "ingress", Name: "requests_total",
			Help: "Requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "paystream", Subsystem: "ingress", Name: "request_seconds",
			Help:    "Time from a request's arrival to its answer, by route pattern and method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15),
		}, []string{"route", "method"}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "paystream", Subsystem: "ingress", Name: "payment_step_seconds",
			Help: "Time a payment request spent in each step of its acceptance: claim (its key and status row, " +
				"committed with a group of others) and produce (payments.requested, until Kafka acknowledged it).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15),
		}, []string{"step"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.steps} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe counts and times every request under its route pattern, never its path: paths
// carry ids, and a label per id would grow without end.
func (m *metrics) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Inc()
		m.latency.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}

func (m *metrics) step(name string, since time.Time) {
	m.steps.WithLabelValues(name).Observe(time.Since(since).Seconds())
}
