package processors

import (
	"testing"
	"time"

	"github.com/paystream/paystream/schemas/catalog"
)

// testOneHop copies n records through one hop at batch 1000 and returns how long the hop
// took from start to committed end.
func testOneHop(tb testing.TB, n int) time.Duration {
	c := newCluster(tb, 4)
	c.topics(tb, []catalog.Topic{topicIn, topicOut})
	produced := c.produce(tb, topicIn, n, 1000, nil)
	begun := time.Now()
	r := start(testConfig(c, "bench", 1000), copyHop(nil), testMetrics(tb), quietLog())
	c.waitCaughtUp(tb, groupA, topicIn, 5*time.Minute)
	took := time.Since(begun)
	r.stop(tb)
	checkExactlyOnce(tb, decodeAll(tb, c.readAll(tb, topicOut)), produced, 1)
	return took
}

func TestOneHop(t *testing.T) {
	t.Parallel()
	testOneHop(t, 10_000)
}

// BenchmarkOneHop reports records/s of one exactly-once hop at 1000 records per
// transaction, including the group join; run with -benchtime=200000x for a stable figure.
func BenchmarkOneHop(b *testing.B) {
	took := testOneHop(b, b.N)
	b.ReportMetric(float64(b.N)/took.Seconds(), "records/s")
}
