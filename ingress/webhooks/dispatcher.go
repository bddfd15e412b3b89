// Package webhooks delivers outcome events to the URLs channels subscribed: each event is
// queued in PostgreSQL once per webhook, POSTed signed with the channel's secret (the API's
// own signature scheme), and retried with exponential backoff for at least 24 hours. Every
// attempt is visible in the delivery log.
package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ingress/signing"
)

// Header names added to deliveries besides the signature headers.
const (
	HeaderEvent      = "X-Paystream-Event"
	HeaderEventID    = "X-Paystream-Event-Id"
	HeaderDeliveryID = "X-Paystream-Delivery"
)

// GiveUpAfter is how long a delivery is retried before it is marked failed.
const GiveUpAfter = 25 * time.Hour

// Backoff returns the wait after the n-th failed attempt: 5 s doubling to at most 1 h,
// which is about 30 attempts in the first 24 h.
func Backoff(n int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < n && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// Dispatcher queues and sends deliveries.
type Dispatcher struct {
	pool     *pgxpool.Pool
	channels *channels.Store
	http     *http.Client
	log      *slog.Logger
	// Backoff is the retry schedule; tests shorten it.
	Backoff func(attempt int) time.Duration
	// Batch is how many due deliveries one pass sends, concurrently.
	Batch int
	// FailureLogEvery spaces the error lines of polls that keep failing; tests shorten it.
	FailureLogEvery time.Duration
}

// NewDispatcher returns a dispatcher with the default schedule and a 10 s HTTP timeout.
func NewDispatcher(pool *pgxpool.Pool, ch *channels.Store, log *slog.Logger) *Dispatcher {
	return &Dispatcher{pool: pool, channels: ch, log: log, Backoff: Backoff, Batch: 32, FailureLogEvery: FailureLogEvery,
		http: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer, not an instruction to follow
		}}}
}

// Event is one event of a channel to deliver to its webhooks.
type Event struct {
	ChannelKey, Type, ID string
	Payload              []byte
}

// EnqueueAll queues each event for every live webhook of its channel subscribed to its
// type, in one statement. Queuing the same event twice does nothing.
func (d *Dispatcher) EnqueueAll(ctx context.Context, events []Event) (int64, error) {
	if len(events) == 0 {
		return 0, nil
	}
	chs, types, ids := make([]string, len(events)), make([]string, len(events)), make([]string, len(events))
	payloads := make([][]byte, len(events))
	for i, e := range events {
		chs[i], types[i], ids[i], payloads[i] = e.ChannelKey, e.Type, e.ID, e.Payload
	}
	tag, err := d.pool.Exec(ctx,
		`INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, payload)
		 SELECT w.id, e.id, e.type, e.payload
		 FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) AS e(channel_key, type, id, payload)
		 JOIN webhooks w ON w.channel_key = e.channel_key AND w.deleted_at IS NULL AND e.type = ANY (w.event_types)
		 ON CONFLICT (webhook_id, event_id) DO NOTHING`,
		chs, types, ids, payloads)
	if err != nil {
		return 0, fmt.Errorf("queueing webhook deliveries: %w", err)
	}
	return tag.RowsAffected(), nil
}

type due struct {
	id         int64
	webhookID  string
	channelKey string
	url        string
	eventID    string
	eventType  string
	payload    []byte
	attempts   int
	createdAt  time.Time
}

// claimLease is how long a claimed delivery is hidden from other dispatchers while it is
// being sent; longer than the HTTP timeout.
const claimLease = time.Minute

// DeliverDue sends the deliveries whose time has come, at most Batch of them, and returns
// how many it attempted. Claiming moves a delivery's next attempt a lease ahead and
// commits, so no transaction stays open across HTTP calls and several ingress instances
// never send one delivery at the same time; a dispatcher that dies mid-send leaves the
// delivery to be retried when its lease ends.
func (d *Dispatcher) DeliverDue(ctx context.Context) (int, error) {
	rows, err := d.pool.Query(ctx,
		`WITH claimed AS (
		     UPDATE webhook_deliveries SET next_attempt_at = now() + $2 * interval '1 second'
		     WHERE id IN (SELECT id FROM webhook_deliveries
		                  WHERE state = 'pending' AND next_attempt_at <= now()
		                  ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
		     RETURNING id, webhook_id, event_id, event_type, payload, attempts, created_at)
		 SELECT c.id, c.webhook_id, w.channel_key, w.url, c.event_id, c.event_type, c.payload, c.attempts, c.created_at
		 FROM claimed c JOIN webhooks w ON w.id = c.webhook_id`, d.Batch, int64(claimLease.Seconds()))
	if err != nil {
		return 0, fmt.Errorf("claiming deliveries: %w", err)
	}
	batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (due, error) {
		var x due
		err := r.Scan(&x.id, &x.webhookID, &x.channelKey, &x.url, &x.eventID, &x.eventType, &x.payload, &x.attempts, &x.createdAt)
		return x, err
	})
	if err != nil {
		return 0, fmt.Errorf("claiming deliveries: %w", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(batch))
	for i, x := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, sendErr := d.send(ctx, x)
			errs[i] = d.record(ctx, x, status, sendErr)
		}()
	}
	wg.Wait()
	return len(batch), errors.Join(errs...)
}

// record writes the outcome of one attempt.
func (d *Dispatcher) record(ctx context.Context, x due, status int, sendErr error) error {
	attempts := x.attempts + 1
	ctx = context.WithoutCancel(ctx) // an attempt that happened must be recorded
	if sendErr == nil && status >= 200 && status < 300 {
		_, err := d.pool.Exec(ctx,
			`UPDATE webhook_deliveries SET state = 'delivered', attempts = $2, last_status = $3, last_error = NULL, delivered_at = now()
			 WHERE id = $1`, x.id, attempts, status)
		return err
	}
	msg := "receiver answered " + strconv.Itoa(status)
	if sendErr != nil {
		msg = sendErr.Error()
	}
	next := time.Now().Add(d.Backoff(attempts))
	state := "pending"
	if next.Sub(x.createdAt) > GiveUpAfter {
		state = "failed"
	}
	d.log.Info("webhook delivery failed", "delivery", x.id, "webhook", x.webhookID, "attempt", attempts, "status", status, "err", msg, "state", state)
	_, err := d.pool.Exec(ctx,
		`UPDATE webhook_deliveries SET state = $2, attempts = $3, last_status = $4, last_error = $5, next_attempt_at = $6
		 WHERE id = $1`, x.id, state, attempts, nullIfZero(status), msg, next)
	return err
}

func (d *Dispatcher) send(ctx context.Context, x due) (int, error) {
	ch, err := d.channels.Lookup(ctx, x.channelKey)
	if err != nil {
		return 0, fmt.Errorf("channel: %w", err)
	}
	u, err := url.Parse(x.url)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.url, bytes.NewReader(x.payload))
	if err != nil {
		return 0, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(signing.HeaderKey, ch.KeyID)
	req.Header.Set(signing.HeaderTimestamp, ts)
	req.Header.Set(signing.HeaderSignature, signing.Sign([]byte(ch.Secret), ts, http.MethodPost, u.RequestURI(), x.payload))
	req.Header.Set(HeaderEvent, x.eventType)
	req.Header.Set(HeaderEventID, x.eventID)
	req.Header.Set(HeaderDeliveryID, strconv.FormatInt(x.id, 10))
	resp, err := d.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// FailureLogEvery is the default spacing of the error lines of a failure that lasts:
// polling goes on at its interval, so that deliveries resume as soon as the database is
// back, but a database that is down for an hour must not leave 18,000 identical lines in
// the log.
const FailureLogEvery = 30 * time.Second

// Run delivers until ctx ends, polling every interval.
func (d *Dispatcher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var failed int // polls in a row that failed
	var logged time.Time
	for {
		for {
			n, err := d.DeliverDue(ctx)
			switch {
			case err != nil && !errors.Is(err, context.Canceled):
				if failed++; failed == 1 || time.Since(logged) >= d.FailureLogEvery {
					d.log.Error("delivering webhooks", "err", err, "failed_polls", failed)
					logged = time.Now()
				}
			case err == nil && failed > 0:
				d.log.Info("delivering webhooks again", "failed_polls", failed)
				failed = 0
			}
			if n < d.Batch || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Delivery is one row of the delivery log.
type Delivery struct {
	ID          int64      `json:"id"`
	EventID     string     `json:"event_id"`
	EventType   string     `json:"event_type"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	LastStatus  *int       `json:"last_status,omitempty"`
	LastError   *string    `json:"last_error,omitempty"`
	NextAttempt *time.Time `json:"next_attempt_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
}

// Deliveries lists a webhook's deliveries, newest first, if the webhook is the channel's.
func (d *Dispatcher) Deliveries(ctx context.Context, channelKey, webhookID string, limit int) ([]Delivery, bool, error) {
	var owned bool
	if err := d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = $1 AND channel_key = $2)`,
		webhookID, channelKey).Scan(&owned); err != nil || !owned {
		return nil, false, err
	}
	rows, err := d.pool.Query(ctx,
		`SELECT id, event_id, event_type, state, attempts, last_status, last_error,
		        CASE WHEN state = 'pending' THEN next_attempt_at END, created_at, delivered_at
		 FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2`, webhookID, limit)
	if err != nil {
		return nil, true, err
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Delivery])
	return list, true, err
}

func nullIfZero(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}
