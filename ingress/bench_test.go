package ingress

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/gcsettings"

	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ingress/client"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/schemas"
)

// BenchmarkAcceptPayments measures accepted payments/s through POST /v1/payments: 64
// concurrent signed clients on loopback, the ingress, kfake and a PostgreSQL with fsync on,
// all on this machine. It reports accepted/s and the p50 and p99 latency of an answer.
// Run: go test -run '^$' -bench AcceptPayments -benchtime 20000x ./ingress/
func BenchmarkAcceptPayments(b *testing.B) {
	gcsettings.Apply() // the collector runs as in the paystream binary
	ctx := context.Background()
	db := testenv.DurablePostgres(b)
	key, _ := channels.ParseMasterKey(channels.NewMasterKey())
	store, err := channels.NewStore(db.Pool, key)
	if err != nil {
		b.Fatal(err)
	}
	l, err := ledger.New(ctx, db.Pool)
	if err != nil {
		b.Fatal(err)
	}
	k := testenv.NewKafka(b, testenv.Partitions(12))
	serde, err := schemas.NewSerde(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewServer(Config{Pool: db.Pool, Ledger: l, Subsidiary: "BENCH", Channels: store, Producer: k.Client(b),
		Serde: serde, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	hs := httptest.NewServer(s)
	defer hs.Close()
	ch, err := store.Create(ctx, "bench", channels.AllScopes, 1_000_000)
	if err != nil {
		b.Fatal(err)
	}
	c := client.New(client.Credentials{BaseURL: hs.URL, KeyID: ch.KeyID, Secret: ch.Secret}).
		WithHTTPClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}, Timeout: 30 * time.Second})

	const clients = 64
	var next atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					break
				}
				body := fmt.Sprintf(`{"type":"transfer","amount":"1.00","currency":"USD","source_wallet_id":"wal_%d","destination_wallet_id":"wal_%d"}`,
					i%10_000+1, (i+1)%10_000+1)
				t0 := time.Now()
				if _, err := c.Do(ctx, "POST", "/v1/payments", []byte(body), "", nil); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "accepted/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}
