package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/ingress/client"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/schemas/catalog"
)

// devProcess is a `paystream dev` child process.
type devProcess struct {
	cmd      *exec.Cmd
	httpAddr string
	kafka    string
	mu       sync.Mutex
	stdout   strings.Builder
	stderr   strings.Builder
	done     chan struct{}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startDevProcess(t testing.TB, args ...string) *devProcess {
	t.Helper()
	p := &devProcess{httpAddr: freeAddr(t), kafka: freeAddr(t), done: make(chan struct{})}
	all := append([]string{"dev", "--http", p.httpAddr, "--kafka-addr", p.kafka, "--admin", ""}, args...)
	p.cmd = exec.Command(os.Args[0], all...)
	p.cmd.Env = append(os.Environ(), "PAYSTREAM_RUN_MAIN=1")
	out, _ := p.cmd.StdoutPipe()
	errOut, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	copyTo := func(r io.Reader, b *strings.Builder) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			b.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}
	wg.Add(2)
	go copyTo(out, &p.stdout)
	go copyTo(errOut, &p.stderr)
	go func() { wg.Wait(); _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *devProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String() + p.stderr.String()
}

// bannerField returns the fields after key on the banner's line that starts with key. The
// banner is printed as dev becomes healthy and reaches the test through a pipe, so it may
// arrive just after /healthz answers: this waits for it, at most 10 s.
func (p *devProcess) bannerField(t testing.TB, key string) []string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lines := strings.Split(p.output(), "\n")
		for _, line := range lines[:len(lines)-1] { // the last one may be incomplete
			if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
				return f[1:]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("banner has no %q line:\n%s", key, p.output())
		}
	}
}

// waitHealthy polls /healthz until it answers 200, for at most 30 s.
func (p *devProcess) waitHealthy(t testing.TB) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 30*time.Second {
		resp, err := http.Get("http://" + p.httpAddr + "/healthz")
		if err == nil {
			var body struct{ Status string }
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && body.Status == "ok" {
				return time.Since(start)
			}
		}
		select {
		case <-p.done:
			t.Fatalf("paystream dev exited before it was healthy:\n%s", p.output())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("paystream dev not healthy within 30 s:\n%s", p.output())
	return 0
}

// stop sends sig and waits for a clean exit within the 10 s budget.
func (p *devProcess) stop(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(shutdownBudget + 2*time.Second):
		t.Fatalf("paystream dev did not stop within %s:\n%s", shutdownBudget, p.output())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("paystream dev exited %d:\n%s", code, p.output())
	}
}

func postmasterPID(t *testing.T, pgDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pgDir, "postmaster.pid"))
	if err != nil {
		t.Fatalf("reading postmaster.pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func assertGone(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after paystream dev stopped", pid)
	}
}

func TestDevEphemeralIsHealthyAndStopsClean(t *testing.T) {
	t.Parallel()
	admin := freeAddr(t)
	p := startDevProcess(t, "--ephemeral", "--admin", admin)
	p.waitHealthy(t)

	dataDir := p.bannerField(t, "data")[0]
	pid := postmasterPID(t, filepath.Join(dataDir, "pg"))
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.kafka))
	if err != nil {
		t.Fatal(err)
	}
	if n := partitionsOf(t, cl, string(catalog.PaymentsOutcomes)); n != config.EmbeddedPartitions {
		t.Errorf("the embedded broker's topics have %d partitions, want %d", n, config.EmbeddedPartitions)
	}
	cl.Close()

	// The demo channel's credentials sign a real API call.
	c, err := client.FromFile(filepath.Join(dataDir, "dev-channel.json"))
	if err != nil {
		t.Fatal(err)
	}
	var hooks struct{ Webhooks []any }
	if _, err := c.Do(context.Background(), "GET", "/v1/webhooks", nil, "", &hooks); err != nil {
		t.Errorf("signed call with the dev channel: %v", err)
	}
	var acc struct{ ID, Status string }
	body := `{"type":"topup","amount":"10.00","currency":"USD","destination_wallet_id":"wal_1"}`
	if _, err := c.Do(context.Background(), "POST", "/v1/payments", []byte(body), "", &acc); err != nil || acc.Status != "accepted" {
		t.Errorf("payment through dev: %+v %v", acc, err)
	}
	// The banner's way to try the API: paystream call with the demo channel.
	code, out, errOut := runCLI(t, "call", "--data", dataDir, "POST", "/v1/users", `{"type":"customer","name":"Ana Lima","kyc_level":2}`)
	if code != 0 || !strings.Contains(out, "HTTP 201") || !strings.Contains(out, `"id": "usr_`) {
		t.Errorf("paystream call: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, "call", "--data", dataDir, "POST", "/v1/users", `{"type":"alien"}`); code == 0 || !strings.Contains(out, "invalid_user") {
		t.Errorf("paystream call with a bad body: exit %d\n%s", code, out)
	}
	if !strings.Contains(p.output(), "cmd/paystream call --data "+dataDir+" POST /v1/users") {
		t.Errorf("the banner does not show how to call the API:\n%s", p.output())
	}
	if resp, err := http.Get("http://" + p.httpAddr + "/v1/webhooks"); err != nil || resp.StatusCode != 401 {
		t.Errorf("unsigned call: %v %v, want 401", resp, err)
	}
	// dev's own Kafka clients reach its broker through memory.
	if n := metricValue(t, "http://"+admin+"/metrics", "paystream_kafka_in_memory_connections_total"); n < 3 {
		t.Errorf("%v connections through memory, want one or more for each of the producer, the outcome reader and the stage runner", n)
	}
	// The private servers' files are handed to the kernel's writeback as they change; the
	// first pass, made on its own goroutine as dev starts, takes every file of both folders.
	started := func() float64 {
		return metricValue(t, "http://"+admin+"/metrics", `paystream_writeback_files_total{result="started"}`)
	}
	for deadline := time.Now().Add(10 * time.Second); started() < 10 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if n := started(); n < 10 {
		t.Errorf("writeback started for %v files, want those of PostgreSQL and the broker", n)
	}
	if n := metricValue(t, "http://"+admin+"/metrics", `paystream_writeback_files_total{result="failed"}`); n != 0 {
		t.Errorf("writeback failed for %v files", n)
	}

	p.stop(t, os.Interrupt)
	assertGone(t, pid)
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ephemeral folder %s left behind (%v)", dataDir, err)
	}
	if !strings.Contains(p.output(), "paystream dev stopped") {
		t.Errorf("no clean-stop log line:\n%s", p.output())
	}
}

func TestDevReusesItsDataFolder(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "paystream-devdata-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	topic := string(catalog.PaymentsRequested)

	// An explicit partition count is what the topics are made with; a later start
	// without one keeps them as they are, silently.
	p := startDevProcess(t, "--data", dir, "--partitions", "5")
	p.waitHealthy(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.kafka))
	if err != nil {
		t.Fatal(err)
	}
	if n := partitionsOf(t, cl, topic); n != 5 {
		t.Errorf("%s has %d partitions with --partitions 5", topic, n)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("w1"), Value: []byte("kept")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	dbURL, err := os.ReadFile(urlFile(dir))
	if err != nil {
		t.Fatal(err)
	}
	exec1(t, string(dbURL), "INSERT INTO currencies (code, exponent, name) VALUES ('XTS', 2, 'test')")
	pid := postmasterPID(t, filepath.Join(dir, "pg"))
	p.stop(t, syscall.SIGTERM)
	assertGone(t, pid)

	p = startDevProcess(t, "--data", dir)
	p.waitHealthy(t)
	if !strings.Contains(p.output(), "applied=0") {
		t.Errorf("second start re-applied migrations:\n%s", p.output())
	}
	if strings.Contains(p.output(), "differs from the catalog") {
		t.Errorf("second start without --partitions warns of the topics' partitions:\n%s", p.output())
	}
	dbURL, _ = os.ReadFile(urlFile(dir))
	var n int
	conn, err := pgx.Connect(ctx, string(dbURL))
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM currencies WHERE code = 'XTS'").Scan(&n); err != nil || n != 1 {
		t.Errorf("row written in the first run: count %d, %v", n, err)
	}
	conn.Close(ctx)

	cl, err = kgo.NewClient(kgo.SeedBrokers(p.kafka), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if n := partitionsOf(t, cl, topic); n != 5 {
		t.Errorf("%s has %d partitions after a restart, want the 5 it was made with", topic, n)
	}
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	fs := cl.PollFetches(fctx)
	if err := fs.Err0(); err != nil {
		t.Fatalf("reading the record back: %v", err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "kept" {
		t.Errorf("records after restart: %d, want the one written before", len(recs))
	}
	cl.Close()
	p.stop(t, os.Interrupt)
}

func partitionsOf(t *testing.T, cl *kgo.Client, topic string) int {
	t.Helper()
	details, err := kadm.NewClient(cl).ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return len(details[topic].Partitions)
}

func exec1(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

// metricValue reads one unlabelled metric from a Prometheus text endpoint.
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	v, ok := unlabelledMetrics(resp.Body)[name]
	if !ok {
		t.Fatalf("no %s in %s", name, url)
	}
	return v
}

func TestDevStopsWhenItsPostgresStops(t *testing.T) {
	t.Parallel()
	p := startDevProcess(t, "--ephemeral")
	p.waitHealthy(t)
	dataDir := p.bannerField(t, "data")[0]

	// An immediate shutdown ends the postmaster as a failed crash recovery does (a full
	// disk): no clean checkpoint, the process gone.
	if err := syscall.Kill(postmasterPID(t, filepath.Join(dataDir, "pg")), syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(shutdownBudget + 5*time.Second):
		t.Fatalf("paystream dev still runs %s after its PostgreSQL stopped:\n%s", shutdownBudget+5*time.Second, p.output())
	}
	if code := p.cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("paystream dev exited 0 after losing its database:\n%s", p.output())
	}
	out := p.output()
	for _, want := range []string{"the private PostgreSQL server stopped", "postgres exited (exit status 0)", "removed with the ephemeral data folder"} {
		if !strings.Contains(out, want) {
			t.Errorf("the exit does not say %q:\n%s", want, out)
		}
	}
	// The server's log names the cause; dev logs its tail once, before the folder goes.
	if n := strings.Count(out, "received immediate shutdown request"); n != 1 {
		t.Errorf("the server log's tail appears %d times, want once:\n%s", n, out)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ephemeral folder %s left behind (%v)", dataDir, err)
	}
}
