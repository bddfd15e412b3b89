package main

import (
	"math"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestProcessMetrics(t *testing.T) {
	for _, tc := range []struct {
		name     string
		text     string
		rss, cpu float64
	}{
		{"both", "# HELP process_cpu_seconds_total x\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\n" +
			"process_resident_memory_bytes 2.097152e+08\n", 200, 12.5},
		{"similar names are not taken", "process_cpu_seconds_total_x 9\nprocess_resident_memory_bytes_max 1\nprocess_cpu_seconds_total 3\n", 0, 3},
		{"labelled series are not the process's", "process_cpu_seconds_total{a=\"b\"} 9\n", 0, 0},
		{"garbage", "process_cpu_seconds_total many\n\n", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rss, cpu := processMetrics(strings.NewReader(tc.text))
			if rss != tc.rss || cpu != tc.cpu {
				t.Fatalf("rss %v cpu %v, want %v and %v", rss, cpu, tc.rss, tc.cpu)
			}
		})
	}
}

func TestMachineTicks(t *testing.T) {
	for _, tc := range []struct {
		name        string
		text        string
		busy, total uint64
		cpus        int
		ok          bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice
		{"linux", "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 50 2 25 400 20 1 1 0 3 0\ncpu1 50 3 25 400 20 2 1 0 4 0\nintr 12 0\n", 160, 1000, 2, true},
		{"old kernel, four fields", "cpu 10 0 10 80\ncpu0 10 0 10 80\n", 20, 100, 1, true},
		{"no per-cpu lines", "cpu 10 0 10 80\nintr 1\n", 0, 0, 0, false},
		{"per-cpu line first", "cpu0 1 2 3 4\n", 0, 0, 0, false},
		{"not a number", "cpu 1 x 3 4 5\ncpu0 1 1 3 4 5\n", 0, 0, 0, false},
		{"empty", "", 0, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			busy, total, cpus, ok := machineTicks(strings.NewReader(tc.text))
			if busy != tc.busy || total != tc.total || ok != tc.ok || (ok && cpus != tc.cpus) {
				t.Fatalf("busy %d total %d cpus %d ok %v, want %d %d %d %v", busy, total, cpus, ok, tc.busy, tc.total, tc.cpus, tc.ok)
			}
		})
	}
}

func TestProcTicks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stat  string
		ppid  int
		ticks uint64
		ok    bool
	}{
		{"backend", "4251 (postgres) S 4240 4240 4240 0 -1 4194368 120 0 0 0 700 52 0 0 20 0 1 0 1234 361172480 1950", 4240, 752, true},
		{"postmaster with reaped children", "4240 (postgres) S 1 4240 4240 0 -1 4194560 900 31000 0 0 10 5 3000 400 20 0", 1, 3415, true},
		{"another program", "99 (ps) S 1 99 99 0 -1 0 0 0 0 0 500 500 0 0 20 0", 0, 0, false},
		{"a name with spaces and parentheses", "7 (postgres (x)) S 1 7 7 0 -1 0 0 0 0 0 5 5 0 0 20 0", 0, 0, false},
		{"cut short", "8 (postgres) S 1 8 8 0 -1 0 0 0 0 0 5", 0, 0, false},
		{"not a number", "9 (postgres) S 1 9 9 0 -1 0 0 0 0 0 x 5 0 0 20 0", 0, 0, false},
		{"no parent", "9 (postgres) S ? 9 9 0 -1 0 0 0 0 0 5 5 0 0 20 0", 0, 0, false},
		{"garbage", "postgres", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ppid, ticks, ok := procTicks(tc.stat, "postgres")
			if ppid != tc.ppid || ticks != tc.ticks || ok != tc.ok {
				t.Fatalf("parent %d, %d ticks, ok %v; want %d, %d, %v", ppid, ticks, ok, tc.ppid, tc.ticks, tc.ok)
			}
		})
	}
	proc := fstest.MapFS{
		"4240/stat": {Data: []byte("4240 (postgres) S 1 4240 4240 0 -1 0 0 0 0 0 10 5 3000 400 20 0")},
		"4251/stat": {Data: []byte("4251 (postgres) S 4240 4240 4240 0 -1 0 0 0 0 0 700 52 0 0 20 0")},
		"5000/stat": {Data: []byte("5000 (postgres) S 1 5000 5000 0 -1 0 0 0 0 0 20 10 0 0 20 0")},
		"5003/stat": {Data: []byte("5003 (postgres) S 5000 5000 5000 0 -1 0 0 0 0 0 60 10 0 0 20 0")},
		"77/stat":   {Data: []byte("77 (ps) S 1 77 77 0 -1 0 0 0 0 0 900 900 0 0 20 0")},
		"stat":      {Data: []byte("cpu 1 2 3 4\n")},
		"self/stat": {Data: []byte("5 (postgres) S 1 5 5 0 -1 0 0 0 0 0 1 1 0 0 20 0")},
	}
	got := postgresTicks(proc)
	if len(got) != 2 || got[4240] != 4167 || got[5000] != 100 {
		t.Errorf("postgres ticks by server %v, want 4240: 4167 and 5000: 100", got)
	}
}

func TestCPUFigures(t *testing.T) {
	at := time.Unix(1000, 0)
	from := usage{at: at, server: 10, bench: time.Second, busy: 1000, total: 4000, cpus: 2, postgres: map[int]uint64{40: 100}}
	to := usage{at: at.Add(10 * time.Second), server: 14, bench: 3 * time.Second, busy: 2500, total: 6000, cpus: 2, postgres: map[int]uint64{40: 500}}
	var f benchFigures
	cpuFigures(&f, from, to, 2000)
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	// 4 s of paystream and 2 s of bench over 2,000 payments; the machine busy 1,500 of
	// 2,000 ticks over 10 s.
	if !near(f.ServerCPUms, 2) || !near(f.BenchCPUms, 1) || !near(f.MachineBusyPct, 75) {
		t.Fatalf("figures %+v", f)
	}
	// 75 % of 2 CPUs for 10 s is 15 CPU-seconds: 7.5 ms a payment.
	if !near(f.MachineCPUms, 7.5) {
		t.Fatalf("machine %v ms a payment, want 7.5", f.MachineCPUms)
	}
	// PostgreSQL's 400 of the 2,000 ticks: 4 CPU-seconds, 2 ms a payment.
	if !near(f.PostgresCPUms, 2) {
		t.Fatalf("postgres %v ms a payment, want 2", f.PostgresCPUms)
	}

	// Another server on the machine that stopped during the run takes only itself out,
	// and one that started counts whole: 400 + 100 ticks, 2.5 ms a payment.
	var two benchFigures
	from.postgres = map[int]uint64{40: 100, 50: 9000}
	to.postgres = map[int]uint64{40: 500, 60: 100}
	cpuFigures(&two, from, to, 2000)
	if !near(two.PostgresCPUms, 2.5) {
		t.Fatalf("postgres with a server gone and one new: %v ms a payment, want 2.5", two.PostgresCPUms)
	}
	var nopg benchFigures
	cpuFigures(&nopg, usage{at: at, busy: 1000, total: 4000, cpus: 2}, usage{at: at.Add(time.Second), busy: 1500, total: 5000, cpus: 2}, 10)
	if nopg.PostgresCPUms != 0 || nopg.MachineCPUms == 0 {
		t.Fatalf("no PostgreSQL on the machine: %+v", nopg)
	}

	// A restarted server (its counter went back) and an unknown one give no server figure.
	for _, s := range []float64{0, 3} {
		var g benchFigures
		cpuFigures(&g, usage{server: s}, usage{server: 2}, 10)
		if g.ServerCPUms != 0 {
			t.Errorf("server from %v to 2 s: %v ms a payment, want none", s, g.ServerCPUms)
		}
	}
	var none benchFigures
	cpuFigures(&none, from, to, 0)
	if none.ServerCPUms != 0 || none.BenchCPUms != 0 || none.MachineCPUms != 0 || none.MachineBusyPct != 0 || none.PostgresCPUms != 0 {
		t.Fatalf("no payments gave %+v", none)
	}
}

// The bench runs on one P unless GOMAXPROCS is set, and gives back the setting it found.
func TestBenchProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(before)
	runtime.GOMAXPROCS(3)
	if prev := benchProcs(""); prev != 3 || runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("unset: gave back %d, now %d; want 3 and 1", prev, runtime.GOMAXPROCS(0))
	}
	runtime.GOMAXPROCS(3)
	if prev := benchProcs("3"); prev != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("GOMAXPROCS=3: gave back %d, now %d; want 3 and 3", prev, runtime.GOMAXPROCS(0))
	}
}
