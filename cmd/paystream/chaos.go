package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// chaos runs every stage as its own `paystream run` process and, while the bench sends
// payments, kills one at random with SIGKILL and starts it again under the same instance
// id: the drill that shows a crash loses and duplicates nothing. The target must run
// without stages of its own (paystream dev --no-stages).
type chaos struct {
	a       *app
	env     []string
	mu      sync.Mutex
	workers map[string]*exec.Cmd
	kills   int
}

func startChaos(a *app) (*chaos, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	url, err := databaseURL(a)
	if err != nil {
		return nil, err
	}
	brokers := strings.Join(kafkaBrokers(a), ",")
	bank := a.cfg.BankURL
	if bank == "" {
		if b, err := os.ReadFile(bankURLFile(a.cfg.DataDir)); err == nil {
			bank = strings.TrimSpace(string(b))
		}
	}
	c := &chaos{a: a, workers: map[string]*exec.Cmd{},
		env: append(os.Environ(), "PAYSTREAM_DATABASE_URL="+url, "PAYSTREAM_KAFKA_BROKERS="+brokers,
			"PAYSTREAM_BANK_URL="+bank, "PAYSTREAM_ADMIN_ADDR=", "PAYSTREAM_LOG_LEVEL=warn")}
	for _, s := range allStages {
		if err := c.start(exe, s); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

func (c *chaos) start(exe, stage string) error {
	cmd := exec.Command(exe, "run", "--stages", stage, "--instance-id", "chaos-"+stage)
	cmd.Env = c.env
	cmd.Stderr = os.Stderr
	// Its own process group, so a Ctrl-C of the bench reaches it through stop, not twice.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the %s worker: %w", stage, err)
	}
	c.mu.Lock()
	c.workers[stage] = cmd
	c.mu.Unlock()
	return nil
}

// run kills a random worker whenever due says the next kill is due, until it has killed
// n times or stop is closed.
func (c *chaos) run(n int, due func(kills int) bool, stop <-chan struct{}) {
	exe, _ := os.Executable()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for c.kills < n {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if !due(c.kills) {
			continue
		}
		stage := allStages[rng.IntN(len(allStages))]
		c.mu.Lock()
		cmd := c.workers[stage]
		c.mu.Unlock()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		c.kills++
		if err := c.start(exe, stage); err != nil {
			c.a.log.Error("restarting a killed worker", "stage", stage, "err", err)
		}
	}
}

// stop ends every worker gracefully.
func (c *chaos) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cmd := range c.workers {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, cmd := range c.workers {
		_ = cmd.Wait()
	}
}
