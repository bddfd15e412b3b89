package processors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/schemas/catalog"
)

func testDef(name string, in, out catalog.Topic) Definition {
	return Definition{Name: name, Input: in, Group: catalog.Group("test." + name),
		Outputs: []catalog.Topic{out}, Stage: copyStage(out, nil)}
}

func TestPlan(t *testing.T) {
	reg, err := NewRegistry(
		testDef("a", "t1", "t2"),
		testDef("b", "t2", "t3"),
		testDef("c", "t3", "t4"),
		testDef("x", "t9", "t10"),
		alsoReads(testDef("d", "t4", "t5"), "t20"),
		testDef("e", "t5", "t6"),
		alsoReads(testDef("f", "t6", "t7"), "t3"),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		stages string
		fuse   bool
		want   string // hop names joined with a space
		err    error
	}{
		{"a,b,c", false, "a b c", nil},
		{"a,b,c", true, "a+b+c", nil},
		{"a,x,b", true, "a x b", nil},
		{"a,b,x", true, "a+b x", nil},
		{"b, c", true, "b+c", nil},
		{"c,b", true, "c b", nil},
		{"a,b,c,d,e", true, "a+b+c+d+e", nil}, // d's other topic is written outside the hop
		{"c,d", false, "c d", nil},
		{"a,b,c,d,e,f", true, "a+b+c+d+e f", nil}, // f also reads t3, which b writes: not in b's hop
		{"c,d,e,f", true, "c+d+e+f", nil},
		{"a,nope", false, "", ErrUnknownStage},
		{"", false, "", nil},
		{"a,a", true, "", nil},
	} {
		t.Run(tc.stages, func(t *testing.T) {
			hops, err := reg.Plan(ParseStages(tc.stages), tc.fuse)
			if tc.want == "" {
				if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) {
					t.Fatalf("Plan(%q) = %v, want error %v", tc.stages, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, h := range hops {
				names = append(names, h.Name())
			}
			if got := strings.Join(names, " "); got != tc.want {
				t.Errorf("Plan(%q, fuse=%v) = %q, want %q", tc.stages, tc.fuse, got, tc.want)
			}
		})
	}
}

func TestRegistryRejectsBadDefinitions(t *testing.T) {
	good := testDef("a", "t1", "t2")
	for name, d := range map[string]Definition{
		"no name":    {Input: "t1", Group: "g", Outputs: []catalog.Topic{"t2"}, Stage: good.Stage},
		"comma name": {Name: "a,b", Input: "t1", Group: "g", Outputs: []catalog.Topic{"t2"}, Stage: good.Stage},
		"no input":   {Name: "a", Group: "g", Outputs: []catalog.Topic{"t2"}, Stage: good.Stage},
		"no group":   {Name: "a", Input: "t1", Outputs: []catalog.Topic{"t2"}, Stage: good.Stage},
		"no outputs": {Name: "a", Input: "t1", Group: "g", Stage: good.Stage},
		"no stage":   {Name: "a", Input: "t1", Group: "g", Outputs: []catalog.Topic{"t2"}},
		"stateful reading two topics": {Name: "a", Input: "t1", Group: "g", Outputs: []catalog.Topic{"t2"}, Stage: good.Stage,
			Stateful: true, AlsoReads: []catalog.Topic{"t3"}},
		"also reads its input":  alsoReads(good, "t1"),
		"also reads its output": alsoReads(good, "t2"),
		"also reads nothing":    alsoReads(good, ""),
	} {
		if _, err := NewRegistry(d); err == nil {
			t.Errorf("%s: registered", name)
		}
	}
	if _, err := NewRegistry(good, good); err == nil {
		t.Error("registered the same name twice")
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Brokers: []string{"b:9092"}, InstanceID: "pod-0"}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		field  string // in the error; "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no brokers", func(c *Config) { c.Brokers = nil }, "Brokers"},
		{"no instance", func(c *Config) { c.InstanceID = "" }, "InstanceID"},
		{"negative batch", func(c *Config) { c.BatchSize = -1 }, "BatchSize"},
		{"heartbeat above session", func(c *Config) { c.SessionTimeout = time.Second; c.HeartbeatInterval = 2 * time.Second }, "HeartbeatInterval"},
		{"backoff above max", func(c *Config) { c.RetryBackoff = time.Minute }, "RetryBackoff"},
		{"negative stop", func(c *Config) { c.StopTimeout = -time.Second }, "StopTimeout"},
		{"linger", func(c *Config) { c.Linger = 10 * time.Millisecond }, ""},
		{"negative linger", func(c *Config) { c.Linger = -time.Millisecond }, "Linger"},
		{"linger above the most", func(c *Config) { c.Linger = MaxLinger + time.Millisecond }, "Linger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			err := c.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tc.field)
			}
		})
	}
	if d := ok.withDefaults(); d.BatchSize != DefaultBatchSize || d.StopTimeout != DefaultStopTimeout {
		t.Errorf("defaults not applied: %+v", d)
	}
}

func TestRunnerRunsNamedStagesUntilCancelled(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	c.topics(t, []catalog.Topic{topicIn, topicMid, topicOut})
	produced := c.produce(t, topicIn, 2000, 20, nil)
	reg, err := NewRegistry(
		Definition{Name: "first", Input: topicIn, Group: groupA, Outputs: []catalog.Topic{topicMid}, Stage: copyStage(topicMid, nil)},
		Definition{Name: "second", Input: topicMid, Group: groupB, Outputs: []catalog.Topic{topicOut}, Stage: copyStage(topicOut, nil)},
	)
	if err != nil {
		t.Fatal(err)
	}
	hops, err := reg.Plan(ParseStages("first,second"), false)
	if err != nil {
		t.Fatal(err)
	}
	runner, err := NewRunner(testConfig(c, "pod-0", 500), testCodec{}, testMetrics(t), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx, hops...) }()
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	// topicMid is written transactionally, so its end offsets count commit markers the
	// group never consumes; wait for the records instead.
	for deadline := time.Now().Add(30 * time.Second); len(c.readAll(t, topicOut)) < 2000; {
		if time.Now().After(deadline) {
			t.Fatal("second hop did not catch up within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	checkExactlyOnce(t, decodeAll(t, c.readAll(t, topicOut)), produced, 2)
}

func alsoReads(d Definition, ts ...catalog.Topic) Definition {
	d.AlsoReads = ts
	return d
}

func TestHopInputsAndEntries(t *testing.T) {
	h := Hop{Stages: []Definition{
		testDef("a", "t1", "t2"),
		alsoReads(testDef("b", "t2", "t3"), "t8", "t9"),
		alsoReads(testDef("c", "t3", "t4"), "t9", "t10"),
	}}
	if got, want := fmt.Sprint(h.Inputs()), "[t1 t8 t9 t10]"; got != want {
		t.Errorf("Inputs() = %s, want %s", got, want)
	}
	for topic, want := range map[catalog.Topic]int{"t1": 0, "t2": 1, "t8": 1, "t9": 1, "t10": 2, "t4": -1} {
		if got := h.entry(topic); got != want {
			t.Errorf("entry(%s) = %d, want %d", topic, got, want)
		}
	}
}
