package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/connectors/banksim"
	"github.com/paystream/paystream/ingress"
	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ingress/client"
	"github.com/paystream/paystream/ingress/problem"
	"github.com/paystream/paystream/internal/localkafka"
	"github.com/paystream/paystream/internal/pgpool"
	"github.com/paystream/paystream/internal/topics"
	"github.com/paystream/paystream/internal/writeback"
	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/ledger/migrations"
	"github.com/paystream/paystream/processors/fee"
	"github.com/paystream/paystream/schemas"
)

type devCmd struct {
	Ephemeral       bool          `help:"Run on a throwaway data folder, removed at exit."`
	BankFailAmount  string        `help:"The bank simulator declines every request of exactly this amount (to try failures)." placeholder:"AMOUNT"`
	BankLatency     time.Duration `default:"20ms" help:"The bank simulator's answer time (default ${default})."`
	BankFailureRate float64       `help:"Share of bank requests the simulator declines, 0 to 1 (decided by request id, so a retry gets the same answer)."`
	NoStages        bool          `help:"Do not run the payment stages in this process (run them with paystream run, e.g. to kill and restart them)."`
	Retention       time.Duration `default:"10m" help:"How long the embedded broker keeps stream records, set when a topic is created; it holds them in memory, so a long retention under load costs memory (default ${default})."`
	Writeback       time.Duration `default:"250ms" help:"How often the changed files of the private PostgreSQL and the embedded broker are handed to the kernel's writeback, so they reach the disk in small steps rather than in bursts that stall PostgreSQL's commits; 0 leaves it to the kernel (default ${default})."`
}

func (devCmd) Help() string {
	return "Starts PostgreSQL (a private server in <data>/pg, or PAYSTREAM_DATABASE_URL), " +
		"the embedded Kafka broker (persisted in <data>/kafka, or PAYSTREAM_KAFKA_BROKERS), " +
		"applies migrations, creates topics and starts every component, then serves GET /healthz. " +
		"Ctrl-C or SIGTERM stops everything within 10 s. A second run on the same folder reuses its data."
}

// shutdownBudget bounds a clean stop: in-flight work finishes or aborts within it.
const shutdownBudget = 10 * time.Second

// devStack is everything `paystream dev` started, stopped in reverse order.
type devStack struct {
	dataDir   string
	ephemeral bool
	db        *database
	pool      *pgxpool.Pool
	kafka     *localkafka.Broker
	kafkaOpts []kgo.Opt // how this process's clients reach the brokers
	brokers   []string
	client    *kgo.Client
	http      *http.Server
	httpAddr  string
	admin     *adminServer
	bank      *banksim.Simulator
	ready     atomic.Bool
	nTopics   int
	api       atomic.Pointer[ingress.Server]
	noStages  bool
	writeback time.Duration
	bgCancel  context.CancelFunc
	bg        sync.WaitGroup
	creds     client.Credentials
}

func (d devCmd) Run(a *app) error {
	start := time.Now()
	s, err := startDev(a, d)
	if err != nil {
		if s != nil {
			s.stop(a)
		}
		return err
	}
	s.ready.Store(true)
	s.printBanner(a, time.Since(start))
	// Without its database nothing here can accept or post a payment: once the private
	// server is gone (a full disk fails its recovery), dev stops and says why, rather than
	// answering 503 and logging refused connections until someone looks.
	var pgEnded <-chan struct{}
	if s.db.server != nil {
		pgEnded = s.db.server.Exited()
	}
	select {
	case <-a.ctx.Done():
	case <-pgEnded:
		err := s.db.server.Ended()
		a.log.Error("the private PostgreSQL server stopped; stopping paystream dev", "log_tail", s.db.server.LogTail())
		s.stop(a)
		if s.ephemeral {
			err = fmt.Errorf("%w (removed with the ephemeral data folder; its tail is logged above)", err)
		}
		return fmt.Errorf("the private PostgreSQL server stopped: %w", err)
	}
	a.log.Info("stopping paystream dev")
	stopped := time.Now()
	s.stop(a)
	a.log.Info("paystream dev stopped", "took", time.Since(stopped).Round(time.Millisecond))
	return nil
}

func startDev(a *app, d devCmd) (*devStack, error) {
	ephemeral := d.Ephemeral
	var failAmount decimal.Decimal
	if d.BankFailureRate < 0 || d.BankFailureRate > 1 {
		return nil, fmt.Errorf("--bank-failure-rate %v: want 0 to 1", d.BankFailureRate)
	}
	if d.BankFailAmount != "" {
		var err error
		if failAmount, err = decimal.NewFromString(d.BankFailAmount); err != nil {
			return nil, fmt.Errorf("--bank-fail-amount %q is not a decimal", d.BankFailAmount)
		}
	}
	if d.Writeback < 0 {
		return nil, fmt.Errorf("--writeback %v: want 0 or more", d.Writeback)
	}
	s := &devStack{dataDir: a.cfg.DataDir, ephemeral: ephemeral, noStages: d.NoStages, writeback: d.Writeback}
	if ephemeral {
		dir, err := os.MkdirTemp("", "paystream-dev-*")
		if err != nil {
			return nil, err
		}
		// The private PostgreSQL runs as the postgres user, who must enter the folder.
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		s.dataDir = dir
		a.cfg.DataDir = dir
	}
	if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		return s, fmt.Errorf("creating data folder: %w", err)
	}
	a.log.Info("starting paystream dev", "config", a.cfg)

	// Health answers 503 until everything below is up.
	var err error
	if err = s.serveHTTP(a); err != nil {
		return s, err
	}
	if s.admin, err = startAdmin(a); err != nil {
		return s, err
	}

	ctx := a.ctx
	if s.db, err = openDatabase(ctx, a); err != nil {
		return s, err
	}
	if s.db.server != nil {
		if err := os.WriteFile(urlFile(s.dataDir), []byte(s.db.url), 0o600); err != nil {
			return s, err
		}
	}
	res, err := migrations.Up(ctx, s.db.url)
	if err != nil {
		return s, err
	}
	a.log.Info("database migrated", "applied", len(res.Applied), "version", res.Current)
	if s.pool, err = pgpool.Open(ctx, s.db.url); err != nil {
		return s, err
	}

	s.brokers = a.cfg.KafkaBrokers
	if a.cfg.EmbeddedKafka() {
		s.kafka, err = localkafka.Start(localkafka.Options{
			DataDir:    kafkaDir(s.dataDir),
			Addr:       a.cfg.KafkaAddr,
			Partitions: int32(a.cfg.TopicPartitions()),
		})
		if err != nil {
			return s, err
		}
		s.brokers = s.kafka.ListenAddrs()
		s.kafkaOpts = []kgo.Opt{s.kafka.Dialer()}
		if err := s.admin.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "paystream", Subsystem: "kafka", Name: "in_memory_connections_total",
			Help: "Connections this process's clients made to its embedded broker through memory rather than TCP.",
		}, func() float64 { return float64(s.kafka.InMemoryConns()) })); err != nil {
			return s, err
		}
	}
	if s.client, err = kgo.NewClient(append(s.kafkaOpts, kgo.SeedBrokers(s.brokers...))...); err != nil {
		return s, err
	}
	var topicOpts []topics.Option
	if s.kafka != nil {
		topicOpts = append(topicOpts, topics.Retention(d.Retention))
	}
	rep, err := topics.Ensure(ctx, kadm.NewClient(s.client), int32(a.cfg.TopicPartitions()), -1, topicOpts...)
	if err != nil {
		return s, err
	}
	s.nTopics = len(rep.Created) + len(rep.Existing)
	if s.kafka != nil {
		var fixed []string
		if rep, fixed, err = topics.KeepCompacted(ctx, kadm.NewClient(s.client), rep); err != nil {
			return s, err
		}
		if len(fixed) > 0 {
			a.log.Info("compacted topics now keep their values for good (retention.ms -1)", "topics", fixed)
		}
	}
	if a.cfg.Partitions == 0 {
		// Unasked, topics an earlier dev created keep their partition count: partitions
		// only ever grow, and growing them would move wallets to other partitions.
		rep.Diffs = slices.DeleteFunc(rep.Diffs, func(d topics.Diff) bool { return d.What == "partitions" })
	}
	for _, d := range rep.Diffs {
		a.log.Warn("topic differs from the catalog", "topic", d.Topic, "setting", d.What, "have", d.Have, "want", d.Want)
	}
	a.log.Info("topics ready", "created", len(rep.Created), "existing", len(rep.Existing))

	key, err := masterKey(a, true)
	if err != nil {
		return s, err
	}
	store, err := channels.NewStore(s.pool, key)
	if err != nil {
		return s, err
	}
	if s.creds, err = devChannel(ctx, store, s.dataDir, "http://"+s.httpAddr); err != nil {
		return s, fmt.Errorf("creating the demo channel: %w", err)
	}
	l, err := ledger.New(ctx, s.pool)
	if err != nil {
		return s, err
	}
	if err := seedDev(ctx, l, a.cfg.Subsidiary); err != nil {
		return s, fmt.Errorf("seeding demo data: %w", err)
	}
	if err := seedDemoRules(ctx, s.pool, a.cfg.Subsidiary); err != nil {
		return s, err
	}
	preview, err := fee.New(s.pool, l, fee.Config{Log: a.log})
	if err != nil {
		return s, err
	}
	serde, err := schemas.NewSerde(ctx, a.cfg.SchemaRegistryURL)
	if err != nil {
		return s, err
	}
	api, err := ingress.NewServer(ingress.Config{Pool: s.pool, Ledger: l, Subsidiary: a.cfg.Subsidiary,
		Channels: store, Producer: s.client, Serde: serde, FeePreview: preview.Preview, Log: a.log, Ready: s.check,
		Metrics: s.admin.reg})
	if err != nil {
		return s, err
	}
	if a.cfg.BankURL == "" {
		if s.bank, err = banksim.Start("127.0.0.1:0", banksim.Options{Latency: d.BankLatency, FailureRate: d.BankFailureRate, FailAmount: failAmount}); err != nil {
			return s, err
		}
		a.cfg.BankURL = s.bank.URL()
		if err := os.WriteFile(bankURLFile(s.dataDir), []byte(s.bank.URL()), 0o644); err != nil {
			return s, err
		}
	}
	s.background(a, api, l, serde)
	s.api.Store(api)
	return s, nil
}

func (s *devStack) serveHTTP(a *app) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api := s.api.Load()
		if api == nil {
			problem.Write(w, problem.New(http.StatusServiceUnavailable, "starting", "paystream dev is starting"))
			return
		}
		api.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listening on %s (PAYSTREAM_HTTP_ADDR): %w", a.cfg.HTTPAddr, err)
	}
	s.httpAddr = ln.Addr().String()
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server", "err", err)
		}
	}()
	return nil
}

// background starts the ingress's own loops: the outcome reader, webhook deliveries and
// the purge of old idempotency keys.
func (s *devStack) background(a *app, api *ingress.Server, l *ledger.Ledger, serde *schemas.Serde) {
	ctx, cancel := context.WithCancel(context.Background())
	s.bgCancel = cancel
	s.bg.Add(2)
	if !s.noStages {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			if err := runStages(ctx, a, s.brokers, s.kafkaOpts, s.pool, l, serde, s.admin.reg, allStages); err != nil {
				a.log.Error("stages stopped", "err", err)
			}
		}()
	}
	go func() {
		defer s.bg.Done()
		if err := api.ReadOutcomes(ctx, append(s.kafkaOpts, kgo.SeedBrokers(s.brokers...))...); err != nil {
			a.log.Error("outcome reader stopped", "err", err)
		}
	}()
	go func() {
		defer s.bg.Done()
		api.RunMaintenance(ctx)
	}()
	if p := s.pacer(a); p != nil {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			p.Run(ctx, s.writeback, a.log)
		}()
	}
}

// kafkaDir is where the embedded broker of a dev data folder keeps its topics.
func kafkaDir(dataDir string) string { return filepath.Join(dataDir, "kafka") }

// pacer returns the writeback pacer over the folders of the servers this process runs
// (none for a PostgreSQL or Kafka given from outside), with its counters registered.
func (s *devStack) pacer(a *app) *writeback.Pacer {
	var dirs []string
	if s.db.server != nil {
		dirs = append(dirs, s.db.server.Dir())
	}
	if s.kafka != nil {
		dirs = append(dirs, kafkaDir(s.dataDir))
	}
	if s.writeback == 0 || len(dirs) == 0 {
		return nil
	}
	p := writeback.New(dirs...)
	for result, n := range map[string]*atomic.Int64{"started": &p.Started, "failed": &p.Failed} {
		err := s.admin.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "paystream", Subsystem: "writeback", Name: "files_total",
			Help:        "Changed files of the private servers handed to the kernel's writeback, and those it could not be started for.",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(n.Load()) }))
		if err != nil {
			a.log.Warn("registering the writeback counters", "err", err)
		}
	}
	return p
}

// check reports whether PostgreSQL and Kafka answer; the API's /readyz calls it.
func (s *devStack) check(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("PostgreSQL unreachable: %w", err)
	}
	if err := s.client.Ping(ctx); err != nil {
		return fmt.Errorf("kafka unreachable: %w", err)
	}
	return nil
}

// healthz answers 200 when start-up is complete and PostgreSQL and Kafka answer now.
func (s *devStack) healthz(w http.ResponseWriter, r *http.Request) {
	status := map[string]string{"postgres": "starting", "kafka": "starting"}
	ok := s.ready.Load()
	if ok {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status["postgres"], status["kafka"] = "ok", "ok"
		if err := s.pool.Ping(ctx); err != nil {
			status["postgres"], ok = "unreachable", false
		}
		if err := s.client.Ping(ctx); err != nil {
			status["kafka"], ok = "unreachable", false
		}
	}
	w.Header().Set("Content-Type", "application/json")
	body := map[string]any{"status": "ok", "components": status}
	if !ok {
		body["status"] = "unavailable"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (s *devStack) printBanner(a *app, took time.Duration) {
	w := a.out
	fmt.Fprintf(w, "\npaystream dev is ready (started in %s)\n\n", took.Round(time.Millisecond))
	fmt.Fprintf(w, "  HTTP        http://%s   GET /healthz\n", s.httpAddr)
	if s.admin.addr != "" {
		fmt.Fprintf(w, "  admin       http://%s/metrics   /debug/pprof/\n", s.admin.addr)
	}
	if s.noStages {
		fmt.Fprintf(w, "  stages      none in this process (--no-stages): run them with paystream run\n")
	} else {
		fmt.Fprintf(w, "  stages      %s (instance %s)\n", strings.Join(allStages, ", "), instanceID(a))
	}
	if s.bank != nil {
		fmt.Fprintf(w, "  bank        simulator at %s (connector %q)\n", s.bank.URL(), bankConnector)
	}
	if s.db.server != nil {
		fmt.Fprintf(w, "  PostgreSQL  127.0.0.1:%d, database %s (private server in %s; URL in %s)\n",
			s.db.server.Port(), devDatabase, s.db.server.Dir(), urlFile(s.dataDir))
	} else {
		fmt.Fprintf(w, "  PostgreSQL  %s\n", redactedURL(s.db.url))
	}
	where := "external"
	if s.kafka != nil {
		where = "embedded, data in " + kafkaDir(s.dataDir)
	}
	fmt.Fprintf(w, "  Kafka       %v (%s), %d catalog topics\n", s.brokers, where, s.nTopics)
	if s.ephemeral {
		fmt.Fprintf(w, "  data        %s (ephemeral: removed at exit)\n", s.dataDir)
	}
	fmt.Fprintf(w, "  channel     key %s (every scope); credentials in %s\n", s.creds.KeyID, filepath.Join(s.dataDir, "dev-channel.json"))
	fmt.Fprintf(w, "\nTry (each call is signed with the demo channel; ids come from the answers):\n")
	ps := "go run ./cmd/paystream call --data " + s.dataDir
	fmt.Fprintf(w, "  %s POST /v1/users '{\"type\":\"customer\",\"name\":\"Ana Lima\",\"kyc_level\":2}'\n", ps)
	fmt.Fprintf(w, "  %s POST /v1/wallets '{\"user_id\":\"usr_1\",\"currencies\":[\"USD\"]}'\n", ps)
	fmt.Fprintf(w, "  %s --wait 10 POST /v1/payments '{\"type\":\"topup\",\"amount\":\"100.00\",\"currency\":\"USD\",\"destination_wallet_id\":\"wal_1\"}'\n", ps)
	fmt.Fprintf(w, "  %s --wait 10 POST /v1/payments '{\"type\":\"transfer\",\"amount\":\"10.00\",\"currency\":\"USD\",\"source_wallet_id\":\"wal_1\",\"destination_wallet_id\":\"wal_2\"}'\n", ps)
	fmt.Fprintf(w, "  %s GET /v1/wallets/wal_1/balances\n", ps)
	fmt.Fprintf(w, "  curl -s http://%s/healthz\n", s.httpAddr)
	fmt.Fprintf(w, "  go run ./cmd/paystream channels list --data %s\n", s.dataDir)
	if s.kafka != nil {
		fmt.Fprintf(w, "  go run ./cmd/paystream topics --kafka-addr %s      # compare topics with the catalog\n", s.brokers[0])
	}
	if s.db.server != nil {
		fmt.Fprintf(w, "  psql \"$(cat %s)\" -c '\\dt'\n", urlFile(s.dataDir))
	}
	fmt.Fprintf(w, "\nCtrl-C stops everything.\n\n")
}

// stop shuts the stack down within shutdownBudget, in the reverse order of start.
func (s *devStack) stop(a *app) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownBudget)
	defer cancel()
	s.ready.Store(false)
	if s.http != nil {
		_ = s.http.Shutdown(ctx)
	}
	if s.bgCancel != nil {
		s.bgCancel()
		s.bg.Wait()
	}
	if api := s.api.Load(); api != nil {
		api.Close()
	}
	s.admin.close(ctx)
	if s.client != nil {
		s.client.Close()
	}
	if s.bank != nil {
		_ = s.bank.Close()
	}
	if s.kafka != nil {
		s.kafka.Close() // flushes the persisted state, transaction markers included
	}
	if s.pool != nil {
		s.pool.Close()
	}
	if s.db != nil {
		if s.db.server != nil {
			os.Remove(urlFile(s.dataDir))
		}
		if err := s.db.close(ctx); err != nil {
			a.log.Warn("stopping PostgreSQL", "err", err)
		}
	}
	if s.ephemeral && s.dataDir != "" {
		if err := os.RemoveAll(s.dataDir); err != nil {
			a.log.Warn("removing ephemeral data folder", "dir", s.dataDir, "err", err)
		}
	}
}
