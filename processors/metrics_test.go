package processors

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paystream/paystream/schemas/catalog"
)

func TestMetricsAreServedInPrometheusFormat(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering the metrics twice on one registry succeeded")
	}
	c := newCluster(t, 2)
	c.topics(t, []catalog.Topic{topicIn, topicOut})
	c.produce(t, topicIn, 500, 10, nil)
	r := start(testConfig(c, "w", 100), copyHop(nil), m, quietLog())
	c.waitCaughtUp(t, groupA, topicIn, 30*time.Second)
	r.stop(t)

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`paystream_stage_records_in_total{stage="copy"} 500`,
		`paystream_stage_records_out_total{stage="copy",topic="test.out"} 500`,
		`paystream_hop_batch_records_count{hop="copy"}`,
		`paystream_hop_transaction_seconds_bucket{hop="copy",result="commit"`,
		`paystream_hop_consumer_lag_records{hop="copy",partition="0",topic="test.in"}`,
		`paystream_hop_record_age_seconds_count{hop="copy"} 500`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestStatefulHopRefusesAShortChangelog(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	c.topics(t, []catalog.Topic{topicIn, topicOut})
	if _, err := c.adm.CreateTopic(t.Context(), 2, -1, nil, string(groupA.Changelog())); err != nil {
		t.Fatal(err)
	}
	r := start(testConfig(c, "w", 100), countHop(nil), testMetrics(t), quietLog())
	select {
	case err := <-r.done:
		if err == nil || !strings.Contains(err.Error(), "fewer than the 3") {
			t.Errorf("run = %v, want a refusal naming the partition counts", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the hop ran with a changelog shorter than its input")
	}
	r.cancel()
}
