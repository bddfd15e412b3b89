package risk

import (
	"testing"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/schemas"
)

// BenchmarkProcess screens a transfer against hour, day and month limits on its type and
// on every type, with the payer's counters in the state as the runner keeps them and the
// batch's wallets read beforehand, as in a hop.
func BenchmarkProcess(b *testing.B) {
	f := newFixture(b)
	for _, typ := range []string{"transfer", AllTypes} {
		for _, w := range Windows {
			f.limit(Limit{KYCLevel: 1, Type: typ, Window: w, Currency: "USD",
				MaxCount: ptr(1 << 30), MaxAmount: ptr(decimal.RequireFromString("1000000000.00"))})
		}
	}
	payer, _ := f.wallet(1)
	payee, _ := f.wallet(1)
	p := newTestPayment(from(payer), to(payee), amount("12.34"))
	in := &processors.Input{Value: p}
	if err := f.stage.Prepare(f.ctx, []*processors.Input{in}); err != nil {
		b.Fatal(err)
	}
	st := mapState{}
	b.ReportAllocs()
	for b.Loop() {
		p.Risk = nil
		res, err := f.stage.Process(f.ctx, in, st)
		if err != nil {
			b.Fatal(err)
		}
		if out, ok := res.Outputs[0].Value.(*schemas.Payment); !ok || out.Risk.Decision != DecisionApprove {
			b.Fatalf("%+v", res.Outputs[0].Value)
		}
	}
}
