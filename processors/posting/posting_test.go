package posting

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/connectors"
	"github.com/paystream/paystream/connectors/banksim"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/processors/pipeline"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// world is a ledger with a subsidiary and funded wallets, a cluster, and the last stages
// running on it.
type world struct {
	t      *testing.T
	db     *testenv.DB
	l      *ledger.Ledger
	k      *testenv.Kafka
	serde  *schemas.Serde
	bank   *banksim.Simulator
	cancel context.CancelFunc
	done   chan error
}

func newWorld(t *testing.T, bankOpts banksim.Options) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, db: testenv.Postgres(t)}
	var err error
	if w.l, err = ledger.New(ctx, w.db.Pool); err != nil {
		t.Fatal(err)
	}
	if err := w.l.CreateSubsidiary(ctx, ledger.Subsidiary{ID: "TEST", Name: "t", BaseCurrency: "USD"}); err != nil {
		t.Fatal(err)
	}
	w.k = testenv.NewKafka(t, testenv.Partitions(2), testenv.FakeOptions(kfake.GroupMinSessionTimeout(100*time.Millisecond)))
	if w.serde, err = schemas.NewSerde(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if w.bank, err = banksim.Start("127.0.0.1:0", bankOpts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.bank.Close() })

	reg, err := processors.NewRegistry(New(w.l, w.db.Pool).Definition(), NewSettlement(w.l, w.db.Pool).Definition(),
		connectors.NewStage(banksim.NewClient("bank", w.bank.URL())).Definition())
	if err != nil {
		t.Fatal(err)
	}
	hops, err := reg.Plan([]string{pipeline.Posting, "settlement", "connectors"}, false)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := processors.NewMetrics(prometheus.NewRegistry())
	r, err := processors.NewRunner(processors.Config{Brokers: w.k.Brokers, InstanceID: "t1", BatchSize: 100,
		SessionTimeout: time.Second, HeartbeatInterval: 100 * time.Millisecond}, w.serde, m, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	w.cancel, w.done = cancel, make(chan error, 1)
	go func() { w.done <- r.Run(runCtx, hops...) }()
	t.Cleanup(w.stop)
	return w
}

func (w *world) stop() {
	if w.cancel != nil {
		w.cancel()
		<-w.done
		w.cancel = nil
	}
}

// wallet opens a wallet with a USD account holding funds.
func (w *world) wallet(kind ledger.UserKind, funds string) string {
	w.t.Helper()
	ctx := context.Background()
	u, err := w.l.CreateUser(ctx, ledger.User{Kind: kind, DisplayName: "x"})
	if err != nil {
		w.t.Fatal(err)
	}
	wal, err := w.l.CreateWallet(ctx, ledger.Wallet{UserID: u.ID, Subsidiary: "TEST"})
	if err != nil {
		w.t.Fatal(err)
	}
	acc, err := w.l.OpenWalletAccount(ctx, wal.ID, "USD", ledger.Main, ledger.WalletRules)
	if err != nil {
		w.t.Fatal(err)
	}
	if funds != "0" {
		clearing, err := w.l.SystemAccount(ctx, "TEST", ledger.ConnectorClearing, "USD", "seed")
		if err != nil {
			clearing, err = w.l.OpenSystemAccount(ctx, "TEST", ledger.ConnectorClearing, "USD", "seed", ledger.Rules{})
		}
		if err != nil {
			w.t.Fatal(err)
		}
		if _, err := w.l.Post(ctx, ledger.TopUp("seed-"+ledger.WalletRef(wal.ID), clearing.ID, acc.ID, decimal.RequireFromString(funds), "USD", ledger.Fee{})); err != nil {
			w.t.Fatal(err)
		}
	}
	return ledger.WalletRef(wal.ID)
}

func (w *world) balance(ref string) string {
	w.t.Helper()
	id, _ := ledger.ParseWalletRef(ref)
	acc, err := w.l.WalletAccount(context.Background(), id, "USD", ledger.Main)
	if err != nil {
		w.t.Fatal(err)
	}
	b, err := w.l.Balance(context.Background(), acc.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return b.Available.StringFixed(2) + "/" + b.Posted.StringFixed(2)
}

// send writes routed payments, keyed by their payer (or credited) wallet.
func (w *world) send(ps ...*schemas.Payment) {
	w.t.Helper()
	cl := w.k.Client(w.t)
	for _, p := range ps {
		b, err := w.serde.Encode(catalog.PaymentsRouted, p)
		if err != nil {
			w.t.Fatal(err)
		}
		key := p.PayerWallet
		if key == "" {
			key = p.PayeeWallet
		}
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: string(catalog.PaymentsRouted), Key: []byte(key), Value: b}).FirstErr(); err != nil {
			w.t.Fatal(err)
		}
	}
}

// outcomes waits until every payment has an outcome in one of final (or the deadline).
func (w *world) outcomes(final map[string]bool, ids ...string) map[string][]*schemas.PaymentOutcome {
	w.t.Helper()
	cl := w.k.Client(w.t, kgo.ConsumeTopics(string(catalog.PaymentsOutcomes)), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string][]*schemas.PaymentOutcome{}
	for {
		complete := true
		for _, id := range ids {
			os := got[id]
			if len(os) == 0 || !final[os[len(os)-1].Status] {
				complete = false
			}
		}
		if complete {
			return got
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			w.t.Fatalf("outcomes so far %v; not all of %v ended", summary(got), ids)
		}
		fs.EachRecord(func(r *kgo.Record) {
			v, err := w.serde.Decode(catalog.PaymentsOutcomes, r.Value)
			if err != nil {
				w.t.Errorf("undecodable outcome: %v", err)
				return
			}
			o := v.(*schemas.PaymentOutcome)
			got[o.PaymentID] = append(got[o.PaymentID], o)
		})
	}
}

func summary(m map[string][]*schemas.PaymentOutcome) map[string][]string {
	out := map[string][]string{}
	for id, os := range m {
		for _, o := range os {
			out[id] = append(out[id], o.Status+":"+o.ReasonCode)
		}
	}
	return out
}

var ended = map[string]bool{pipeline.StatusPosted: true, pipeline.StatusRejected: true, pipeline.StatusFailed: true}

// newTestPayment is a routed internal transfer; opts change it.
func newTestPayment(id, from, to, amount string, opts ...func(*schemas.Payment)) *schemas.Payment {
	p := &schemas.Payment{
		Meta: schemas.Meta{EventID: pipeline.NewEventID(), PaymentID: id}, CreatedAt: time.Now().UTC(),
		Subsidiary: "TEST", Channel: "test", Type: "transfer", PayerWallet: from, PayeeWallet: to,
		Amount: schemas.Money{Amount: decimal.RequireFromString(amount), Currency: "USD"},
		Fees:   []schemas.FeeLine{}, Rewards: []schemas.Reward{}, Route: &schemas.Route{Kind: "internal"},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func usd(s string) schemas.Money {
	return schemas.Money{Amount: decimal.RequireFromString(s), Currency: "USD"}
}

func TestTransfersPostOnceWithFeesAndRejectWhatTheBalanceCannotCover(t *testing.T) {
	t.Parallel()
	w := newWorld(t, banksim.Options{})
	a, b := w.wallet(ledger.Customer, "100"), w.wallet(ledger.Customer, "0")
	withFee := func(p *schemas.Payment) {
		p.Fees = []schemas.FeeLine{{Code: "p2p_fee", Amount: usd("0.50"), VATRate: "0.1", VAT: usd("0.05")}}
	}
	ok := newTestPayment("pay_ok", a, b, "60", withFee)
	w.send(ok, newTestPayment("pay_poor", a, b, "50"), ok) // the second copy of pay_ok is a replay
	got := w.outcomes(ended, "pay_ok", "pay_poor")

	if os := got["pay_ok"]; os[0].Status != pipeline.StatusPosted || len(os[0].Postings) != 3 || len(os[0].Fees) != 1 {
		t.Errorf("pay_ok outcomes %v postings %+v", summary(got)["pay_ok"], os[0].Postings)
	}
	if os := got["pay_poor"]; os[0].Status != pipeline.StatusRejected || os[0].ReasonCode != "insufficient_funds" {
		t.Errorf("pay_poor outcomes %v", summary(got)["pay_poor"])
	}
	// 100 - 60 - 0.55: the replay moved nothing.
	if got, want := w.balance(a), "39.45/39.45"; got != want {
		t.Errorf("payer balance %s, want %s", got, want)
	}
	if got, want := w.balance(b), "60.00/60.00"; got != want {
		t.Errorf("payee balance %s, want %s", got, want)
	}
	rep, err := ledger.Verify(context.Background(), w.db.Pool)
	if err != nil || !rep.OK() {
		t.Errorf("ledger invariants: %v\n%s", err, rep)
	}
}

func TestHoldCaptureAndRefund(t *testing.T) {
	t.Parallel()
	w := newWorld(t, banksim.Options{})
	customer, merchant := w.wallet(ledger.Customer, "50"), w.wallet(ledger.Merchant, "0")
	hold := newTestPayment("pay_hold", customer, merchant, "20", func(p *schemas.Payment) { p.Type = "hold" })
	w.send(hold)
	w.outcomes(ended, "pay_hold")
	if got := w.balance(customer); got != "30.00/50.00" {
		t.Errorf("after hold: %s, want 30 available of 50", got)
	}
	capture := newTestPayment("pay_cap", customer, merchant, "5", func(p *schemas.Payment) {
		p.Type, p.Operation, p.TargetPaymentID, p.CaptureMode = "hold", "capture", "pay_hold", "release_rest"
	})
	over := newTestPayment("pay_cap2", customer, merchant, "1", func(p *schemas.Payment) {
		p.Type, p.Operation, p.TargetPaymentID = "hold", "capture", "pay_hold"
	})
	w.send(capture, over)
	got := w.outcomes(ended, "pay_cap", "pay_cap2")
	if got["pay_cap"][0].Status != pipeline.StatusPosted || got["pay_cap2"][0].Status != pipeline.StatusRejected {
		t.Errorf("captures %v: want the first posted, the second refused (hold released)", summary(got))
	}
	if got := w.balance(customer); got != "45.00/45.00" {
		t.Errorf("after capture with release_rest: %s, want 45/45", got)
	}

	pay := newTestPayment("pay_mp", customer, merchant, "10", func(p *schemas.Payment) { p.Type = "merchant_payment" })
	w.send(pay)
	w.outcomes(ended, "pay_mp")
	refund := func(id, amount string) *schemas.Payment {
		return newTestPayment(id, merchant, customer, amount, func(p *schemas.Payment) {
			p.Type, p.Operation, p.TargetPaymentID = "merchant_payment", "refund", "pay_mp"
		})
	}
	w.send(refund("pay_r1", "6"), refund("pay_r2", "4"), refund("pay_r3", "0.01"))
	got = w.outcomes(ended, "pay_r1", "pay_r2", "pay_r3")
	if got["pay_r1"][0].Status != pipeline.StatusPosted || got["pay_r2"][0].Status != pipeline.StatusPosted ||
		got["pay_r3"][0].ReasonCode != ReasonRefundTooHigh {
		t.Errorf("refunds %v: want 6 and 4 posted and the cent beyond 10 refused", summary(got))
	}
	if got := w.balance(customer); got != "45.00/45.00" {
		t.Errorf("after paying 10 and getting 10 back: %s, want 45/45", got)
	}
}

// Holds and captures sent together are decided in one ledger transaction (HoldBatch),
// except a capture of a hold the same batch places, which goes after it.
func TestHoldsTogether(t *testing.T) {
	t.Parallel()
	w := newWorld(t, banksim.Options{})
	customer, merchant := w.wallet(ledger.Customer, "50"), w.wallet(ledger.Merchant, "0")
	hold := func(id, amount string) *schemas.Payment {
		return newTestPayment(id, customer, merchant, amount, func(p *schemas.Payment) { p.Type = "hold" })
	}
	capture := func(id, target, amount string) *schemas.Payment {
		return newTestPayment(id, customer, merchant, amount, func(p *schemas.Payment) {
			p.Type, p.Operation, p.TargetPaymentID, p.CaptureMode = "hold", "capture", target, "release_rest"
		})
	}
	w.send(hold("pay_h1", "20"), hold("pay_h2", "40"), capture("pay_c1", "pay_h1", "15"), hold("pay_h3", "10"))
	got := w.outcomes(ended, "pay_h1", "pay_h2", "pay_c1", "pay_h3")
	if got["pay_h1"][0].Status != pipeline.StatusPosted || got["pay_h2"][0].ReasonCode != "insufficient_funds" ||
		got["pay_c1"][0].Status != pipeline.StatusPosted || got["pay_h3"][0].Status != pipeline.StatusPosted {
		t.Errorf("outcomes %v: want h1, its capture and h3 posted, h2 beyond the funds refused", summary(got))
	}
	// 50 - 15 captured - 10 held by h3; h1's other 5 released.
	if got := w.balance(customer); got != "25.00/35.00" {
		t.Errorf("customer %s, want 25 available of 35", got)
	}
	w.send(capture("pay_c3", "pay_h3", "10"), capture("pay_c3b", "pay_h3", "1"), capture("pay_c2", "pay_h2", "1"))
	got = w.outcomes(ended, "pay_c3", "pay_c3b", "pay_c2")
	if got["pay_c3"][0].Status != pipeline.StatusPosted || got["pay_c3b"][0].Status != pipeline.StatusRejected ||
		got["pay_c2"][0].ReasonCode != ReasonHoldNotFound {
		t.Errorf("outcomes %v: want the first capture of h3 posted, the second refused, none for h2", summary(got))
	}
	if got := w.balance(merchant); got != "25.00/25.00" {
		t.Errorf("merchant %s, want 25", got)
	}
	rep, err := ledger.Verify(context.Background(), w.db.Pool)
	if err != nil || !rep.OK() {
		t.Errorf("ledger invariants: %v\n%s", err, rep)
	}
}

func TestWithdrawalAndTopUpThroughTheBank(t *testing.T) {
	t.Parallel()
	w := newWorld(t, banksim.Options{FailAmount: decimal.RequireFromString("13")})
	a := w.wallet(ledger.Customer, "100")
	bank := func(p *schemas.Payment) { p.Route = &schemas.Route{Kind: "connector", Connector: "bank"} }
	w.send(
		newTestPayment("pay_wd_ok", a, "", "30", bank, func(p *schemas.Payment) { p.Type = "withdrawal" }),
		newTestPayment("pay_wd_fail", a, "", "13", bank, func(p *schemas.Payment) { p.Type = "withdrawal" }),
		newTestPayment("pay_tu", "", a, "7", bank, func(p *schemas.Payment) { p.Type = "topup" }),
	)
	got := w.outcomes(ended, "pay_wd_ok", "pay_wd_fail", "pay_tu")
	last := func(id string) *schemas.PaymentOutcome { return got[id][len(got[id])-1] }
	if got["pay_wd_ok"][0].Status != pipeline.StatusPending || last("pay_wd_ok").Status != pipeline.StatusPosted {
		t.Errorf("withdrawal: %v, want pending then posted", summary(got)["pay_wd_ok"])
	}
	if o := last("pay_wd_fail"); o.Status != pipeline.StatusFailed || o.ReasonCode != "bank_declined" {
		t.Errorf("refused withdrawal: %v", summary(got)["pay_wd_fail"])
	}
	if last("pay_tu").Status != pipeline.StatusPosted {
		t.Errorf("top-up: %v", summary(got)["pay_tu"])
	}
	// 100 - 30 paid out + 7 collected; the refused 13 is released.
	if got, want := w.balance(a), "77.00/77.00"; got != want {
		t.Errorf("balance %s, want %s", got, want)
	}
	if w.bank.Executed() != 3 {
		t.Errorf("bank executed %d requests, want 3", w.bank.Executed())
	}
	rep, err := ledger.Verify(context.Background(), w.db.Pool)
	if err != nil || !rep.OK() {
		t.Errorf("ledger invariants: %v\n%s", err, rep)
	}
}
