package main

import (
	"bufio"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// usage is what the run had used at one moment: the paystream process's CPU seconds and
// resident memory (from its /metrics), the bench's CPU, and the machine's busy and total
// CPU time (from /proc/stat) when the bench runs on the same machine.
//
// CPU per payment compares changes where latency cannot: on a machine the bench shares
// with paystream and PostgreSQL, the p99 of two identical one-minute runs differed by
// 30 %, and the CPU they spent per payment by 3 %. Compare it at the same rate only: the
// hop runs transactions back to back, so at a lower rate the same machine is nearly as
// busy, spread over fewer payments.
type usage struct {
	at           time.Time
	server       float64 // seconds; 0 when unknown
	bench        time.Duration
	busy, total  uint64         // clock ticks of all CPUs; total 0 when unknown
	cpus         int            // the machine's CPUs, as /proc/stat lists them
	postgres     map[int]uint64 // clock ticks of this machine's PostgreSQL servers, by postmaster pid
	serverRSSMiB float64
}

// sampleUsage reads the usage now; metricsURL may be empty.
func sampleUsage(metricsURL string) usage {
	s := usage{at: time.Now()}
	if metricsURL != "" {
		if resp, err := http.Get(metricsURL); err == nil {
			s.serverRSSMiB, s.server = processMetrics(io.LimitReader(resp.Body, 4<<20))
			resp.Body.Close()
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.bench = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if f, err := os.Open("/proc/stat"); err == nil {
		s.busy, s.total, s.cpus, _ = machineTicks(f)
		f.Close()
	}
	s.postgres = postgresTicks(os.DirFS("/proc"))
	return s
}

// postgresTicks adds up the CPU time of the processes named postgres in a /proc by
// server: a postmaster's own, what it counts for the backends it has reaped (a backend
// that ended during the run is no process any more), and its live backends'. Other
// PostgreSQL servers on the machine count too, each apart, so that one stopping during
// the run (a test's, say) takes only itself out of the sum.
func postgresTicks(proc fs.FS) map[int]uint64 {
	entries, err := fs.ReadDir(proc, ".")
	if err != nil {
		return nil
	}
	type process struct {
		ppid  int
		ticks uint64
	}
	procs := map[int]process{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := fs.ReadFile(proc, e.Name()+"/stat")
		if err != nil {
			continue // ended meanwhile
		}
		if ppid, t, ok := procTicks(string(b), "postgres"); ok {
			procs[pid] = process{ppid, t}
		}
	}
	servers := map[int]uint64{}
	for pid, p := range procs {
		if _, ok := procs[p.ppid]; ok {
			pid = p.ppid // a backend: its postmaster names the server
		}
		servers[pid] += p.ticks
	}
	return servers
}

// postgresDelta is the ticks the servers of to spent since from. A server that ended
// between the two is left out; one that started between them counts whole.
func postgresDelta(from, to map[int]uint64) uint64 {
	var d uint64
	for pid, t := range to {
		if f, ok := from[pid]; ok && t >= f {
			d += t - f
		} else {
			d += t // new, or its pid went to another server
		}
	}
	return d
}

// procTicks reads a /proc/<pid>/stat line: the parent's pid, and the process's user and
// system time and those of its reaped children, when its name is comm.
func procTicks(stat, comm string) (int, uint64, bool) {
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open || stat[open+1:end] != comm {
		return 0, 0, false
	}
	// After the name: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	// cmajflt utime stime cutime cstime ...
	f := strings.Fields(stat[end+1:])
	if len(f) < 15 {
		return 0, 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, false
	}
	var ticks uint64
	for _, s := range f[11:15] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		ticks += n
	}
	return ppid, ticks, true
}

// processMetrics finds the process collector's resident memory (MiB) and CPU seconds in
// a Prometheus text exposition.
func processMetrics(r io.Reader) (rssMiB, cpuSeconds float64) {
	m := unlabelledMetrics(r)
	return m["process_resident_memory_bytes"] / (1 << 20), m["process_cpu_seconds_total"]
}

// unlabelledMetrics reads the series without labels of a Prometheus text exposition, by
// name; lines it cannot read are skipped.
func unlabelledMetrics(r io.Reader) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		out[name] = v
	}
	return out
}

// machineTicks reads /proc/stat: the time all CPUs spent in each state, from its first
// line, and how many CPUs it lists. Idle and waiting for I/O count as not busy. The CPUs
// are counted here rather than asked of the Go runtime, which counts only those the bench
// may run on.
func machineTicks(r io.Reader) (busy, total uint64, cpus int, ok bool) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		return 0, 0, 0, false
	}
	f := strings.Fields(sc.Text())
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, 0, false
	}
	var idle uint64
	// user nice system idle iowait irq softirq steal; guest time is already in user.
	for i, s := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, 0, false
		}
		total += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "cpu"); ok && rest != "" && rest[0] >= '0' && rest[0] <= '9' {
			cpus++
		}
	}
	if cpus == 0 {
		return 0, 0, 0, false
	}
	return total - idle, total, cpus, true
}

// cpuFigures turns two samples around the sending phase into CPU per payment.
func cpuFigures(f *benchFigures, from, to usage, payments int) {
	if payments == 0 {
		return
	}
	n := float64(payments)
	if from.server > 0 && to.server >= from.server {
		f.ServerCPUms = 1000 * (to.server - from.server) / n
	}
	f.BenchCPUms = float64(to.bench-from.bench) / float64(time.Millisecond) / n
	if to.total > from.total && to.cpus > 0 {
		ticks := float64(to.total - from.total)
		busy := float64(to.busy - from.busy)
		f.MachineBusyPct = 100 * busy / ticks
		// The busy share of every CPU over the time between the samples, in CPU-seconds.
		wall := to.at.Sub(from.at).Seconds()
		f.MachineCPUms = 1000 * wall * float64(to.cpus) * busy / ticks / n
		// /proc/stat and /proc/<pid>/stat count in the same ticks (USER_HZ): the share of
		// the machine's ticks that PostgreSQL's make, over the same CPU-seconds.
		if d := postgresDelta(from.postgres, to.postgres); len(from.postgres) > 0 && d > 0 {
			f.PostgresCPUms = 1000 * wall * float64(to.cpus) * float64(d) / ticks / n
		}
	}
}
