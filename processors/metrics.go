package processors

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the runner's Prometheus metrics. Create them once per process with
// NewMetrics on the registerer the admin server's /metrics handler serves.
type Metrics struct {
	recordsIn   *prometheus.CounterVec
	recordsOut  *prometheus.CounterVec
	rejections  *prometheus.CounterVec
	dlq         *prometheus.CounterVec
	retries     *prometheus.CounterVec
	batchSize   *prometheus.HistogramVec
	txnLatency  *prometheus.HistogramVec
	stageTime   *prometheus.HistogramVec
	endTime     *prometheus.HistogramVec
	consumerLag *prometheus.GaugeVec
	recordAge   *prometheus.HistogramVec
	lingered    *prometheus.CounterVec
}

// NewMetrics registers the runner's metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		recordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "paystream", Subsystem: "stage", Name: "records_in_total",
			Help: "Records handed to a stage; a batch retried after an abort counts again.",
		}, []string{"stage"}),
		recordsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "paystream", Subsystem: "stage", Name: "records_out_total",
			Help: "Records a stage wrote, by topic, counted when their transaction commits.",
		}, []string{"stage", "topic"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "paystream", Subsystem: "stage", Name: "rejections_total",
			Help: "Payments a stage ended with a rejection, by reason code.",
		}, []string{"stage", "reason"}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "paystream", Subsystem: "stage", Name: "dlq_total",
			Help: "Records sent to a dead-letter topic, counted when their transaction commits.",
		}, []string{"stage", "topic"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "paystream", Subsystem: "hop", Name: "transient_retries_total",
			Help: "Batches aborted and retried after a transient stage error.",
		}, []string{"hop"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "paystream", Subsystem: "hop", Name: "batch_records",
			Help:    "Input records per transaction.",
			Buckets: []float64{1, 10, 50, 100, 250, 500, 1000, 2000, 5000},
		}, []string{"hop"}),
		txnLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "paystream", Subsystem: "hop", Name: "transaction_seconds",
			Help:    "Time from beginning a transaction to its end, by result.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"hop", "result"}),
		stageTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "paystream", Subsystem: "stage", Name: "batch_seconds",
			Help:    "Time a stage spent on one batch: preparing it (a BatchPreparer's database work), processing its records, and finishing it (a BatchFinisher's).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"stage", "phase"}),
		endTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "paystream", Subsystem: "hop", Name: "end_seconds",
			Help:    "Time ending a transaction took: flushing its records, committing its offsets and its end marker.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"hop"}),
		consumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "paystream", Subsystem: "hop", Name: "consumer_lag_records",
			Help: "Records behind the high watermark at the last fetch, per input partition.",
		}, []string{"hop", "topic", "partition"}),
		recordAge: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "paystream", Subsystem: "hop", Name: "record_age_seconds",
			Help: "How long ago an input record was produced when its hop fetched it: the time it spent " +
				"waiting in its topic, including its producer's transaction. Summed over the hops of a chain, " +
				"it tells where a payment waited.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"hop"}),
		lingered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "paystream", Subsystem: "hop", Name: "linger_seconds_total",
			Help: "Time a hop waited before polling because its last transaction began less than Linger ago.",
		}, []string{"hop"}),
	}
	for _, c := range []prometheus.Collector{m.recordsIn, m.recordsOut, m.rejections, m.dlq,
		m.retries, m.batchSize, m.txnLatency, m.stageTime, m.endTime, m.consumerLag, m.recordAge, m.lingered} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering runner metrics: %w", err)
		}
	}
	return m, nil
}
