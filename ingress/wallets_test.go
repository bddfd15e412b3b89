package ingress

import (
	"context"
	"errors"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/ingress/client"
	"github.com/paystream/paystream/ledger"
)

func TestUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, _ := api.channel(t, channels.AllScopes, 0)

	var u User
	body := `{"type":"customer","name":"Ana Lima","phone":"+84901234567","email":"ana@example.com","country":"VN","kyc_level":1}`
	resp, err := c.Do(ctx, "POST", "/v1/users", []byte(body), "", &u)
	if err != nil || resp.Status != 201 {
		t.Fatalf("create: %+v %v", resp, err)
	}
	if u.ID == "" || u.Type != "customer" || u.Name != "Ana Lima" || u.KYCLevel != 1 || u.Status != "active" {
		t.Errorf("created %+v", u)
	}
	var got User
	if _, err := c.Do(ctx, "GET", "/v1/users/"+u.ID, nil, "", &got); err != nil || got != u {
		t.Errorf("get: %+v %v, want %+v", got, err, u)
	}
	for _, id := range []string{"usr_999999", "wal_1", "usr_x", "usr_01"} {
		if _, err := c.Do(ctx, "GET", "/v1/users/"+id, nil, "", nil); client.Code(err) != "user_not_found" {
			t.Errorf("GET %s: %v, want user_not_found", id, err)
		}
	}
	_, err = c.Do(ctx, "POST", "/v1/users", []byte(`{"type":"alien","name":"","phone":"123","email":"x","country":"vnm","kyc_level":7}`), "", nil)
	var e *client.Error
	if !errors.As(err, &e) || e.Problem.Code != "invalid_user" || len(e.Problem.Errors) != 6 {
		t.Errorf("invalid user: %v %+v; want 6 field errors", err, e)
	}
}

func TestWallets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	c, _ := api.channel(t, channels.AllScopes, 0)
	var u User
	if _, err := c.Do(ctx, "POST", "/v1/users", []byte(`{"type":"customer","name":"Bo","kyc_level":2}`), "", &u); err != nil {
		t.Fatal(err)
	}

	var w Wallet
	resp, err := c.Do(ctx, "POST", "/v1/wallets", []byte(`{"user_id":"`+u.ID+`","currencies":["VND","USD"]}`), "", &w)
	if err != nil || resp.Status != 201 {
		t.Fatalf("create wallet: %v", err)
	}
	if w.Status != "active" || w.UserID != u.ID || w.WalletType != "personal" || len(w.Accounts) != 2 ||
		w.Accounts[0].Currency != "VND" || w.Accounts[0].Purpose != "main" {
		t.Errorf("wallet %+v", w)
	}

	for name, tt := range map[string]struct{ body, code string }{
		"unknown user":     {`{"user_id":"usr_99999","currencies":["USD"]}`, "user_not_found"},
		"unknown currency": {`{"user_id":"` + u.ID + `","currencies":["ZZZ"]}`, "invalid_wallet"},
		"no currency":      {`{"user_id":"` + u.ID + `","currencies":[]}`, "invalid_wallet"},
		"duplicate":        {`{"user_id":"` + u.ID + `","currencies":["USD","USD"]}`, "invalid_wallet"},
	} {
		if _, err := c.Do(ctx, "POST", "/v1/wallets", []byte(tt.body), "", nil); client.Code(err) != tt.code {
			t.Errorf("%s: %v, want %s", name, err, tt.code)
		}
	}

	// Money arrives through the ledger (the posting stage will do this).
	wid, _ := parseWalletID(w.ID)
	usd, err := api.ledger.WalletAccount(ctx, wid, "USD", ledger.Main)
	if err != nil {
		t.Fatal(err)
	}
	clearing, err := api.ledger.OpenSystemAccount(ctx, "TEST", ledger.ConnectorClearing, "USD", "bank", ledger.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := api.ledger.Post(ctx, ledger.TopUp("pay_topup_1", clearing.ID, usd.ID, decimal.RequireFromString("100"), "USD", ledger.Fee{})); err != nil || r.Err != nil {
		t.Fatalf("top-up: %v %v", err, r.Err)
	}

	var bal struct {
		WalletID string
		Balances []Balance
	}
	if _, err := c.Do(ctx, "GET", "/v1/wallets/"+w.ID+"/balances", nil, "", &bal); err != nil {
		t.Fatal(err)
	}
	want := []Balance{{Currency: "VND", Purpose: "main", Available: "0", Pending: "0", Posted: "0"},
		{Currency: "USD", Purpose: "main", Available: "100.00", Pending: "0.00", Posted: "100.00"}}
	if len(bal.Balances) != 2 || bal.Balances[0] != want[0] || bal.Balances[1] != want[1] {
		t.Errorf("balances %+v, want %+v", bal.Balances, want)
	}

	if _, err := c.Do(ctx, "GET", "/v1/wallets/"+w.ID+"/statement", nil, "", nil); client.Code(err) != "currency_required" {
		t.Errorf("statement of a two-currency wallet without currency: %v", err)
	}
	var st struct {
		Lines      []StatementLine
		NextCursor string `json:"next_cursor"`
	}
	if _, err := c.Do(ctx, "GET", "/v1/wallets/"+w.ID+"/statement?currency=USD&limit=10", nil, "", &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Lines) != 1 || st.Lines[0].Amount != "100.00" || st.Lines[0].Balance != "100.00" || st.Lines[0].PaymentID != "pay_topup_1" {
		t.Errorf("statement %+v", st)
	}

	if _, err := c.Do(ctx, "POST", "/v1/wallets/"+w.ID+"/close", []byte(`{}`), "", nil); client.Code(err) != "wallet_not_empty" {
		t.Errorf("closing a wallet holding 100 USD: %v", err)
	}
	var after Wallet
	if _, err := c.Do(ctx, "POST", "/v1/wallets/"+w.ID+"/freeze", []byte(`{}`), "", &after); err != nil || after.Status != "frozen" {
		t.Errorf("freeze: %+v %v", after, err)
	}
	if _, err := c.Do(ctx, "GET", "/v1/wallets/"+w.ID, nil, "", &after); err != nil || after.Status != "frozen" {
		t.Errorf("get after freeze: %+v %v", after, err)
	}
	if _, err := c.Do(ctx, "POST", "/v1/wallets/"+w.ID+"/unfreeze", []byte(`{}`), "", &after); err != nil || after.Status != "active" {
		t.Errorf("unfreeze: %+v %v", after, err)
	}

	var empty Wallet
	if _, err := c.Do(ctx, "POST", "/v1/wallets", []byte(`{"user_id":"`+u.ID+`","currencies":["EUR"],"wallet_type":"business"}`), "", &empty); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, "POST", "/v1/wallets/"+empty.ID+"/close", []byte(`{}`), "", &after); err != nil || after.Status != "closed" || after.WalletType != "business" {
		t.Errorf("close empty wallet: %+v %v", after, err)
	}
	if _, err := c.Do(ctx, "POST", "/v1/wallets/"+empty.ID+"/unfreeze", []byte(`{}`), "", nil); client.Code(err) != "wallet_closed" {
		t.Errorf("reopening a closed wallet: %v", err)
	}
	if _, err := c.Do(ctx, "GET", "/v1/wallets/wal_424242", nil, "", nil); client.Code(err) != "wallet_not_found" {
		t.Errorf("unknown wallet: %v", err)
	}
}

func TestWalletScopes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := newTestAPI(t)
	reader, _ := api.channel(t, []channels.Scope{channels.WalletsRead}, 0)
	if _, err := reader.Do(ctx, "POST", "/v1/users", []byte(`{"type":"customer","name":"x"}`), "", nil); client.Code(err) != "missing_scope" {
		t.Errorf("read-only channel creating a user: %v", err)
	}
}
