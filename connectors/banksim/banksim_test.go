package banksim

import (
	"testing"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/connectors/conformance"
)

func TestClientConforms(t *testing.T) {
	sim, err := Start("127.0.0.1:0", Options{FailAmount: decimal.RequireFromString("13")})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	conformance.Run(t, conformance.Subject{Connector: NewClient("bank", sim.URL()), Refused: decimal.RequireFromString("13"), Currency: "USD"})
	if sim.Executed() != 4 || sim.Calls() != 7 {
		t.Errorf("bank executed %d of %d calls, want 4 distinct requests of 7", sim.Executed(), sim.Calls())
	}
}

func TestFailureRateIsAFunctionOfTheRequest(t *testing.T) {
	sim, err := Start("127.0.0.1:0", Options{FailureRate: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	failed := 0
	for i := range 200 {
		r := sim.decide(Request{ID: "req-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Amount: "1"})
		if r.Status == "failed" {
			failed++
		}
		if again := sim.decide(Request{ID: "req-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Amount: "1"}); again != r {
			t.Fatalf("the same request decided %v then %v", r, again)
		}
	}
	if failed < 60 || failed > 140 {
		t.Errorf("%d of 200 failed at a 50%% failure rate", failed)
	}
}
