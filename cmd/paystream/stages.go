package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/connectors"
	"github.com/paystream/paystream/connectors/banksim"
	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/processors/fee"
	"github.com/paystream/paystream/processors/loyalty"
	"github.com/paystream/paystream/processors/pipeline"
	"github.com/paystream/paystream/processors/posting"
	"github.com/paystream/paystream/processors/risk"
	"github.com/paystream/paystream/processors/routing"
	"github.com/paystream/paystream/processors/validation"
	"github.com/paystream/paystream/schemas"
)

// bankConnector is the name the bank connector goes by in routes and requests.
const bankConnector = "bank"

// allStages is every stage this binary can run, in chain order.
var allStages = []string{pipeline.Validation, pipeline.Risk, pipeline.Fee, pipeline.Loyalty, pipeline.Routing,
	pipeline.Posting, "settlement", "connectors"}

// stageRegistry builds the stages with their dependencies.
func stageRegistry(ctx context.Context, a *app, pool *pgxpool.Pool, l *ledger.Ledger) (*processors.Registry, error) {
	byType := map[string]string{}
	var conns []connectors.Connector
	if a.cfg.BankURL != "" {
		conns = append(conns, banksim.NewClient(bankConnector, a.cfg.BankURL))
		byType["topup"], byType["withdrawal"] = bankConnector, bankConnector
	}
	val, err := validation.New(ctx, pool, l, validation.Config{Logger: a.log})
	if err != nil {
		return nil, err
	}
	rsk, err := risk.New(ctx, pool, l, risk.Config{Logger: a.log})
	if err != nil {
		return nil, err
	}
	rsk.FollowWallets(val.Wallets())
	fees, err := fee.New(pool, l, fee.Config{Log: a.log})
	if err != nil {
		return nil, err
	}
	loy, err := loyalty.New(pool, l, loyalty.Config{Log: a.log})
	if err != nil {
		return nil, err
	}
	post := posting.New(l, pool)
	campaigns := loyalty.NewRules(pool, l)
	post.ReleaseRewards = func(ctx context.Context, paymentID string) error {
		_, err := campaigns.Release(ctx, paymentID)
		return err
	}
	return processors.NewRegistry(
		val.Definition(),
		rsk.Definition(),
		fees.Definition(),
		loy.Definition(),
		routing.New(byType).Definition(),
		post.Definition(),
		posting.NewSettlement(l, pool).Definition(),
		connectors.NewStage(conns...).Definition(),
	)
}

// seedDemoRules installs the demo rule set of every stage; each is safe to run twice.
func seedDemoRules(ctx context.Context, pool *pgxpool.Pool, subsidiary string) error {
	for name, seed := range map[string]func() error{
		"validation": func() error { return validation.SeedDemo(ctx, pool) },
		"risk":       func() error { return risk.SeedDemo(ctx, pool) },
		"fee":        func() error { return fee.SeedDemo(ctx, pool, subsidiary) },
		"loyalty":    func() error { return loyalty.SeedDemo(ctx, pool, subsidiary) },
	} {
		if err := seed(); err != nil {
			return fmt.Errorf("seeding %s rules: %w", name, err)
		}
	}
	return nil
}

// instanceID is the configured instance id, or the host name.
func instanceID(a *app) string {
	if a.cfg.InstanceID != "" {
		return a.cfg.InstanceID
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "paystream"
	}
	return h
}

// runStages runs the named stages until ctx ends.
func runStages(ctx context.Context, a *app, brokers []string, kafkaOpts []kgo.Opt, pool *pgxpool.Pool, l *ledger.Ledger,
	serde *schemas.Serde, reg prometheus.Registerer, names []string) error {
	stages, err := stageRegistry(ctx, a, pool, l)
	if err != nil {
		return err
	}
	cfg := processors.Config{Brokers: brokers, KafkaOptions: kafkaOpts, InstanceID: instanceID(a), BatchSize: a.cfg.BatchSize, Linger: a.cfg.HopLinger, Fuse: a.cfg.FuseStages}
	// The embedded broker keeps every transaction marker of a compacted changelog, so its
	// sweep re-read them all and stalled the broker longer each time: 125 ms 14 s into a
	// run at 2,500/s, 223 ms at 54 s.
	cfg.TrimChangelogs = a.cfg.EmbeddedKafka()
	hops, err := stages.Plan(names, cfg.Fuse)
	if err != nil {
		return err
	}
	m, err := processors.NewMetrics(reg)
	if err != nil {
		return err
	}
	r, err := processors.NewRunner(cfg, serde, m, a.log)
	if err != nil {
		return err
	}
	a.log.Info("running stages", "stages", names, "hops", len(hops), "instance", cfg.InstanceID)
	return r.Run(ctx, hops...)
}

// adminServer serves /metrics and /debug/pprof on the admin address.
type adminServer struct {
	reg  *prometheus.Registry
	srv  *http.Server
	addr string
}

func startAdmin(a *app) (*adminServer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &adminServer{reg: reg}
	if a.cfg.AdminAddr == "" {
		return s, nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", a.cfg.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s (PAYSTREAM_ADMIN_ADDR): %w", a.cfg.AdminAddr, err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin server", "err", err)
		}
	}()
	return s, nil
}

func (s *adminServer) close(ctx context.Context) {
	if s != nil && s.srv != nil {
		_ = s.srv.Shutdown(ctx)
	}
}
