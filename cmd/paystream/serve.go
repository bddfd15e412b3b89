package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/ingress"
	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ledger"
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
	url := a.cfg.DatabaseURL
	if url == "" {
		if url, err = runningDevURL(a.cfg.DataDir); err != nil {
			return err
		}
	}
	pool, err := pgxpool.New(a.ctx, url)
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
	api := ingress.NewServer(ingress.Config{Pool: pool, Ledger: l, Subsidiary: a.cfg.Subsidiary, Channels: store, Log: a.log, Ready: pool.Ping})
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
