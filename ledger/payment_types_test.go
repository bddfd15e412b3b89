package ledger

import "testing"

// Every payment type posts, moves exactly what its documentation says, and leaves the
// ledger's invariants intact.
func TestPaymentTypesPost(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	fee := Fee{Amount: d("1"), VAT: d("0.09"), Revenue: f.fees.ID, VATPayable: f.vat.ID}
	customer, merchant := f.wallet("500"), f.wallet("0", asMerchant)
	agent := f.wallet("300", func(s *walletSpec) { s.kind = Agent })
	telco := f.system(ConnectorClearing, "telco", Rules{})
	biller := f.system(ConnectorClearing, "biller", Rules{})
	adjustments := f.system(Adjustments, "", Rules{})

	type want struct {
		a       Account
		balance string // posted balance after the posting
	}
	cases := []struct {
		name string
		p    Posting
		want []want
	}{
		{"top-up", TopUp(f.id("pay"), f.clear.ID, customer.ID, d("100"), "USD", fee),
			[]want{{customer, "598.91"}, {f.clear, "-100"}}},
		{"settlement of top-up", Settlement(f.id("pay"), f.safe.ID, f.clear.ID, d("100"), "USD"),
			[]want{{f.clear, "0"}}},
		{"withdrawal", Withdrawal(f.id("pay"), customer.ID, f.clear.ID, d("50"), "USD", fee),
			[]want{{customer, "547.82"}, {f.clear, "50"}}},
		{"p2p", P2P(f.id("pay"), customer.ID, agent.ID, d("10"), "USD", fee),
			[]want{{customer, "536.73"}, {agent, "310"}}},
		{"merchant payment with discount", MerchantPayment(f.id("pay"), customer.ID, merchant.ID, d("40"), "USD", "5411", fee,
			Discount{Budget: f.budget.ID, Amount: d("5")}), nil}, // budget is empty: refused below
		{"bill payment", BillPayment(f.id("pay"), customer.ID, biller.ID, d("20"), "USD", fee),
			[]want{{customer, "515.64"}, {biller, "20"}}},
		{"airtime", AirtimeTopUp(f.id("pay"), customer.ID, telco.ID, d("5"), "USD", d("0.25"), Fee{Revenue: f.fees.ID}),
			[]want{{customer, "510.64"}, {telco, "4.75"}}},
		{"agent cash-in", AgentCashIn(f.id("pay"), agent.ID, customer.ID, d("30"), "USD", d("0.30"), f.fees.ID),
			[]want{{customer, "540.64"}, {agent, "280.3"}}},
		{"agent cash-out", AgentCashOut(f.id("pay"), customer.ID, agent.ID, d("20"), "USD", fee, d("0.20")),
			[]want{{customer, "519.55"}, {agent, "300.5"}}},
		{"adjustment credit", Adjustment(f.id("pay"), customer.ID, adjustments.ID, d("2.50"), "USD"),
			[]want{{customer, "522.05"}}},
		{"adjustment debit", Adjustment(f.id("pay"), customer.ID, adjustments.ID, d("-0.05"), "USD"),
			[]want{{customer, "522"}}},
	}
	for _, c := range cases {
		r, err := f.l.Post(f.ctx, c.p)
		if c.want == nil {
			if err == nil {
				t.Errorf("%s: posted with an empty campaign budget", c.name)
			}
			continue
		}
		if err != nil || r.Status != Posted {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, w := range c.want {
			b, err := f.l.Balance(f.ctx, w.a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !b.Posted.Equal(d(w.balance)) {
				t.Errorf("%s: account %d (%s) at %s, want %s", c.name, w.a.ID, w.a.Purpose, b.Posted, w.balance)
			}
		}
	}

	// Fund the campaign, then the merchant payment with a discount, a refund and a payout.
	f.mustPost(Settlement(f.id("fund"), f.safe.ID, f.budget.ID, d("100"), "USD"))
	f.mustPost(MerchantPayment(f.id("pay"), customer.ID, merchant.ID, d("40"), "USD", "5411", fee, Discount{Budget: f.budget.ID, Amount: d("5")}))
	if got := f.available(merchant); !got.Equal(d("38.91")) {
		t.Errorf("merchant after payment: %s, want 38.91", got)
	}
	f.mustPost(RefundPayment(f.id("pay"), merchant.ID, customer.ID, d("10"), "USD"))
	f.mustPost(SettlementPayout(f.id("pay"), merchant.ID, f.clear.ID, d("20"), "USD", fee))
	if got := f.available(merchant); !got.Equal(d("7.82")) {
		t.Errorf("merchant after refund and payout: %s, want 7.82", got)
	}

	// Cross-currency: USD out, EUR in, through the FX positions.
	eurWallet := f.wallet("0", func(s *walletSpec) { s.currency = "EUR" })
	posUSD := f.system(FXPosition, "", Rules{})
	posEUR, err := f.l.OpenSystemAccount(f.ctx, f.sub, FXPosition, "EUR", "", Rules{})
	if err != nil {
		t.Fatal(err)
	}
	f.mustPost(FXTransfer(f.id("fx"), FXLeg{customer.ID, posUSD.ID, d("11"), "USD"}, FXLeg{eurWallet.ID, posEUR.ID, d("10.12"), "EUR"}, fee))
	if got := f.available(eurWallet); !got.Equal(d("10.12")) {
		t.Errorf("EUR wallet %s", got)
	}

	// Loyalty points and a combination payment (points + balance + card).
	points := f.wallet("0", withPurpose(Points, WalletRules), func(s *walletSpec) { s.currency = "PTS" })
	acc, _ := f.l.GetAccount(f.ctx, customer.ID)
	if _, err := f.l.OpenWalletAccount(f.ctx, acc.Wallet, "PTS", Points, WalletRules); err != nil {
		t.Fatal(err)
	}
	liability, err := f.l.OpenSystemAccount(f.ctx, f.sub, PointsLiability, "PTS", "", Rules{})
	if err != nil {
		t.Fatal(err)
	}
	f.mustPost(PointsEarning(f.id("pts"), liability.ID, points.ID, d("500")))
	f.mustPost(CombinationPayment(f.id("combo"), Combination{Customer: customer.ID, Merchant: merchant.ID, CustomerPoints: points.ID,
		PointsLiability: liability.ID, Budget: f.budget.ID, CardClearing: f.clear.ID, Points: d("200"), PointsValue: d("2"),
		Balance: d("5"), Card: d("3"), Currency: "USD", MCC: "5411"}, fee))
	if got := f.available(points); !got.Equal(d("300")) {
		t.Errorf("points left %s, want 300", got)
	}
	if got := f.available(merchant); !got.Equal(d("16.73")) {
		t.Errorf("merchant after combination: %s, want 16.73", got)
	}

	// Inter-subsidiary: a SG customer pays a MY merchant in USD.
	if err := f.l.CreateSubsidiary(f.ctx, Subsidiary{ID: "MY01", Name: "Paystream MY", BaseCurrency: "USD"}); err != nil {
		t.Fatal(err)
	}
	interSGMY := f.system(InterSubsidiary, "MY01", Rules{})
	interMYSG, err := f.l.OpenSystemAccount(f.ctx, "MY01", InterSubsidiary, "USD", f.sub, Rules{})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := f.l.CreateUser(f.ctx, User{Kind: Merchant, DisplayName: "MY shop"})
	w, _ := f.l.CreateWallet(f.ctx, Wallet{UserID: u.ID, Subsidiary: "MY01"})
	myMerchant, err := f.l.OpenWalletAccount(f.ctx, w.ID, "USD", Main, WalletRules)
	if err != nil {
		t.Fatal(err)
	}
	f.mustPost(InterSubsidiaryPayment(f.id("inter"), customer.ID, interSGMY.ID, interMYSG.ID, myMerchant.ID, d("7"), "USD", fee))
	if got := f.available(myMerchant); !got.Equal(d("7")) {
		t.Errorf("MY merchant %s", got)
	}
	f.verify()
}
