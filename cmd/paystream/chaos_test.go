package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The crash drill in short: paystream bench --chaos against paystream dev --no-stages,
// every stage its own process, 5 of them killed with SIGKILL during 2,000 payments; every
// accepted payment must have exactly one outcome and one posting, and the ledger verify.
func TestCrashDrill(t *testing.T) {
	// The drill starts stage workers from this test binary, which runs paystream's command
	// line when this is set.
	t.Setenv("PAYSTREAM_RUN_MAIN", "1")
	admin := freeAddr(t)
	p := startDevProcess(t, "--ephemeral", "--no-stages", "--log-level", "warn", "--admin", admin)
	p.waitHealthy(t)
	dataDir := p.bannerField(t, "data")[0]
	out := filepath.Join(t.TempDir(), "bench.json")
	code, stdout, stderr := runCLI(t, "bench", "--data", dataDir, "--kafka-addr", p.kafka, "--admin", "",
		"--admin-url", "http://"+admin+"/metrics", "--wallets", "100", "--count", "2000", "--chaos", "5", "--verify", "--json", out, "--interval", "1s")
	if code != 0 {
		t.Fatalf("bench --chaos exited %d\n%s\n%s", code, stdout, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var fig benchFigures
	if err := json.Unmarshal(b, &fig); err != nil {
		t.Fatal(err)
	}
	if fig.Verified == nil || !*fig.Verified || fig.Kills != 5 || fig.Accepted < 2000 || fig.Completed != fig.Accepted || fig.Errors != 0 {
		t.Errorf("drill figures %+v", fig)
	}
	// The dev process's CPU comes from its /metrics, the machine's from /proc/stat, which
	// counts the dev process, PostgreSQL, the stage workers and the bench.
	// The dev process's private PostgreSQL runs on this machine too.
	if fig.RSSMB <= 0 || fig.ServerCPUms <= 0 || fig.BenchCPUms <= 0 || fig.PostgresCPUms <= 0 ||
		fig.MachineCPUms <= fig.ServerCPUms+fig.BenchCPUms+fig.PostgresCPUms || fig.MachineBusyPct <= 0 || fig.MachineBusyPct > 100 {
		t.Errorf("resource figures: RSS %.0f MB; CPU a payment: dev %.3f ms, bench %.3f ms, postgres %.3f ms, machine %.3f ms (%.0f %% busy)",
			fig.RSSMB, fig.ServerCPUms, fig.BenchCPUms, fig.PostgresCPUms, fig.MachineCPUms, fig.MachineBusyPct)
	}
	// Every payment falls in one interval of a second, by when it was sent.
	var sent, done int
	for i, in := range fig.Intervals {
		sent, done = sent+in.Sent, done+in.Completed
		if in.From != float64(i) || in.To != float64(i+1) || in.Completed > in.Sent ||
			(in.Completed > 0 && (in.OutcomeP50ms <= 0 || in.OutcomeP50ms > in.OutcomeP99ms || in.OutcomeP99ms > in.OutcomeMaxms)) {
			t.Errorf("interval %d: %+v", i, in)
		}
	}
	if len(fig.Intervals) < 2 || sent != fig.Accepted || done != fig.Completed {
		t.Errorf("%d intervals hold %d sent and %d completed; the run %d and %d", len(fig.Intervals), sent, done, fig.Accepted, fig.Completed)
	}
	if !strings.Contains(stdout, "sent in s") {
		t.Errorf("no table of intervals in the bench's output:\n%s", stdout)
	}
	for _, key := range []string{"accepted_per_s", "completed_per_s", "outcome_p50_ms", "outcome_p99_ms", "accepted_p99_ms", "rss_mb",
		"server_cpu_ms_per_payment", "bench_cpu_ms_per_payment", "machine_cpu_ms_per_payment", "machine_busy_pct",
		"postgres_cpu_ms_per_payment"} {
		if !strings.Contains(string(b), `"`+key+`"`) {
			t.Errorf("bench JSON lacks %s", key)
		}
	}
	t.Logf("%d payments, %d kills, %.0f completed/s; CPU a payment: dev %.3f ms, bench %.3f ms, postgres %.3f ms, machine %.3f ms (%.0f %% busy)",
		fig.Accepted, fig.Kills, fig.CompletedPerS, fig.ServerCPUms, fig.BenchCPUms, fig.PostgresCPUms, fig.MachineCPUms, fig.MachineBusyPct)
	p.stop(t, os.Interrupt)
}
