package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/ledger"
)

func TestRulesCommands(t *testing.T) {
	ctx := context.Background()
	db := testenv.Postgres(t)
	t.Setenv("PAYSTREAM_DATABASE_URL", db.URL)
	l, err := ledger.New(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := seedDev(ctx, l, "DEV"); err != nil {
		t.Fatal(err)
	}
	if err := seedDemoRules(ctx, db.Pool, "DEV"); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errOut)
		}
		return out
	}
	count := func(out string) int {
		var list []json.RawMessage
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("not a JSON list: %s", out)
		}
		return len(list)
	}

	fees := count(run("rules", "fees", "list"))
	if fees != 2 {
		t.Errorf("%d demo fee definitions, want 2", fees)
	}
	out := run("rules", "fees", "create", "--json",
		`{"Code":"airtime_fee","Subsidiary":"DEV","Currency":"USD","PaymentType":"airtime_topup","Fixed":"0.20","Rate":"0","PaidBy":"payer","Rounding":"half_up"}`)
	var created struct{ ID int64 }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.ID == 0 {
		t.Fatalf("create printed %s", out)
	}
	if got := count(run("rules", "fees", "list")); got != 3 {
		t.Errorf("%d definitions after create, want 3", got)
	}
	if code, _, errOut := runCLI(t, "rules", "fees", "create", "--json", `{"Code":"Bad Code"}`); code == 0 {
		t.Error("an invalid definition was created")
	} else if !strings.Contains(errOut, "fee definition") {
		t.Errorf("invalid definition error: %s", errOut)
	}
	run("rules", "fees", "disable", "1")

	if got := count(run("rules", "campaigns", "list")); got != 2 {
		t.Errorf("%d demo campaigns, want 2", got)
	}
	run("rules", "campaigns", "fund", "demo-discount", "--amount", "50.00")
	if !strings.Contains(run("rules", "campaigns", "list"), `"Funded": "1050`) {
		t.Errorf("campaign budget not funded:\n%s", run("rules", "campaigns", "list"))
	}

	u, err := l.CreateUser(ctx, ledger.User{Kind: ledger.Customer, DisplayName: "w"})
	if err != nil {
		t.Fatal(err)
	}
	run("rules", "watchlist", "add", ledger.UserRef(u.ID), "--action", "reject")
	if got := count(run("rules", "watchlist", "list")); got != 1 {
		t.Errorf("%d watch-listed users, want 1", got)
	}
	run("rules", "watchlist", "remove", ledger.UserRef(u.ID))
	if got := count(run("rules", "watchlist", "list")); got != 0 {
		t.Errorf("%d watch-listed users after remove, want 0", got)
	}
	if count(run("rules", "kyc-limits", "list")) == 0 || count(run("rules", "limits", "list")) == 0 {
		t.Error("demo KYC or risk limits missing")
	}
}
