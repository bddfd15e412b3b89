package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/ingress"
	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors/fee"
	"github.com/paystream/paystream/schemas"
)

type serveCmd struct{}

func (serveCmd) Help() string {
	return "Serves the channel API on PAYSTREAM_HTTP_ADDR. Needs PostgreSQL (PAYSTREAM_DATABASE_URL, " +
		"or the private server of a running paystream dev on --data) and PAYSTREAM_MASTER_KEY " +
		"(or <data>/master.key). SIGTERM drains open requests within 10 s."
}

func (serveCmd) Run(a *app) error {
	a.log.Info("starting paystream serve", "config", a.cfg)
	key, err := masterKey(a, false)
	if err != nil {
		return err
	}
	pool, err := connect(a)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer pool.Close()
	store, err := channels.NewStore(pool, key)
	if err != nil {
		return err
	}
	l, err := ledger.New(a.ctx, pool)
	if err != nil {
		return err
	}
	brokers := kafkaBrokers(a)
	producer, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer producer.Close()
	serde, err := schemas.NewSerde(a.ctx, a.cfg.SchemaRegistryURL)
	if err != nil {
		return err
	}
	ready := func(ctx context.Context) error {
		if err := pool.Ping(ctx); err != nil {
			return fmt.Errorf("PostgreSQL unreachable: %w", err)
		}
		if err := producer.Ping(ctx); err != nil {
			return fmt.Errorf("kafka unreachable: %w", err)
		}
		return nil
	}
	preview, err := fee.New(pool, l, fee.Config{Log: a.log})
	if err != nil {
		return err
	}
	admin, err := startAdmin(a)
	if err != nil {
		return err
	}
	defer admin.close(context.Background())
	api, err := ingress.NewServer(ingress.Config{Pool: pool, Ledger: l, Subsidiary: a.cfg.Subsidiary, Channels: store,
		Producer: producer, Serde: serde, FeePreview: preview.Preview, Log: a.log, Ready: ready, Metrics: admin.reg})
	if err != nil {
		return err
	}
	defer api.Close()
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	go func() {
		if err := api.ReadOutcomes(bg, kgo.SeedBrokers(brokers...)); err != nil {
			a.log.Error("outcome reader stopped", "err", err)
		}
	}()
	go api.RunMaintenance(bg)
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listening on %s (PAYSTREAM_HTTP_ADDR): %w", a.cfg.HTTPAddr, err)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("serving the API", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-a.ctx.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownBudget)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
