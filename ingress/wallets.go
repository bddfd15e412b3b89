package ingress

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/paystream/paystream/ingress/problem"
	"github.com/paystream/paystream/ledger"
)

// WalletRequest is the body of POST /v1/wallets.
type WalletRequest struct {
	UserID     string   `json:"user_id"`
	Currencies []string `json:"currencies"`
	WalletType string   `json:"wallet_type,omitempty"`
}

// Wallet is the API's view of a wallet.
type Wallet struct {
	ID         string          `json:"id"`
	UserID     string          `json:"user_id"`
	Status     string          `json:"status"`
	WalletType string          `json:"wallet_type"`
	Accounts   []WalletAccount `json:"accounts"`
}

// WalletAccount is one account of a wallet.
type WalletAccount struct {
	ID       string `json:"id"`
	Currency string `json:"currency"`
	Purpose  string `json:"purpose"`
}

var walletTypePattern = regexp.MustCompile(`^[a-z_]{1,32}$`)

const maxWalletCurrencies = 10

func (s *Server) validateWallet(req WalletRequest) (ledger.UserID, *problem.Problem) {
	var errs []problem.FieldError
	add := func(field, code, msg string) {
		errs = append(errs, problem.FieldError{Field: field, Code: code, Message: msg})
	}
	uid, ok := parseUserID(req.UserID)
	switch {
	case req.UserID == "":
		add("user_id", "required", "user_id is required")
	case !ok:
		add("user_id", "invalid_id", "user_id is not a user id")
	}
	if len(req.Currencies) == 0 {
		add("currencies", "required", "a wallet holds at least one currency")
	} else if len(req.Currencies) > maxWalletCurrencies {
		add("currencies", "too_many", "a wallet holds at most 10 currencies")
	}
	seen := map[string]bool{}
	for _, c := range req.Currencies {
		if _, known := s.ledger.Currency(c); !known {
			add("currencies", "unknown_currency", c+" is not a currency this platform handles")
		} else if seen[c] {
			add("currencies", "duplicate", c+" is listed twice")
		}
		seen[c] = true
	}
	if req.WalletType != "" && !walletTypePattern.MatchString(req.WalletType) {
		add("wallet_type", "invalid_wallet_type", "wallet_type is lower-case letters and underscores")
	}
	if len(errs) > 0 {
		return 0, problem.New(http.StatusUnprocessableEntity, "invalid_wallet", "the wallet is not valid").With(errs...)
	}
	return uid, nil
}

func (s *Server) createWallet(w http.ResponseWriter, r *http.Request) {
	var req WalletRequest
	if !readStrict(w, r, &req) {
		return
	}
	uid, p := s.validateWallet(req)
	if p != nil {
		problem.Write(w, p)
		return
	}
	ctx := r.Context()
	if _, err := s.ledger.GetUser(ctx, uid); errors.Is(err, ledger.ErrNotFound) {
		problem.Write(w, problem.New(http.StatusUnprocessableEntity, "user_not_found", "no user "+req.UserID).With(
			problem.FieldError{Field: "user_id", Code: "not_found", Message: "no user " + req.UserID}))
		return
	} else if err != nil {
		s.unavailable(w, "reading user", err)
		return
	}
	if req.WalletType == "" {
		req.WalletType = "personal"
	}
	// Not one transaction: a failure part-way answers 5xx, which is not kept, so the retry
	// makes a new wallet; the abandoned one holds no account or no money.
	wal, err := s.ledger.CreateWallet(ctx, ledger.Wallet{UserID: uid, Subsidiary: s.subsidiary})
	if err != nil {
		s.unavailable(w, "creating wallet", err)
		return
	}
	if err := s.ledger.SetWalletType(ctx, wal.ID, req.WalletType); err != nil {
		s.unavailable(w, "setting wallet type", err)
		return
	}
	out := Wallet{ID: walletID(wal.ID), UserID: req.UserID, Status: string(wal.Status), WalletType: req.WalletType}
	for _, c := range req.Currencies {
		acc, err := s.ledger.OpenWalletAccount(ctx, wal.ID, c, ledger.Main, ledger.WalletRules)
		if err != nil {
			s.unavailable(w, "opening wallet account", err)
			return
		}
		out.Accounts = append(out.Accounts, WalletAccount{ID: accountID(acc.ID), Currency: c, Purpose: string(acc.Purpose)})
	}
	writeJSON(w, http.StatusCreated, out)
}

// loadWallet reads the wallet named in the path, answering 404 itself when there is none.
func (s *Server) loadWallet(w http.ResponseWriter, r *http.Request) (ledger.Wallet, []ledger.Account, bool) {
	raw := chi.URLParam(r, "id")
	id, ok := parseWalletID(raw)
	notFound := func() {
		problem.Write(w, problem.New(http.StatusNotFound, "wallet_not_found", "no wallet "+raw))
	}
	if !ok {
		notFound()
		return ledger.Wallet{}, nil, false
	}
	wal, err := s.ledger.GetWallet(r.Context(), id)
	if errors.Is(err, ledger.ErrNotFound) {
		notFound()
		return ledger.Wallet{}, nil, false
	}
	if err != nil {
		s.unavailable(w, "reading wallet", err)
		return ledger.Wallet{}, nil, false
	}
	accs, err := s.ledger.WalletAccounts(r.Context(), id)
	if err != nil {
		s.unavailable(w, "reading wallet accounts", err)
		return ledger.Wallet{}, nil, false
	}
	return wal, accs, true
}

func (s *Server) walletView(r *http.Request, wal ledger.Wallet, accs []ledger.Account) (Wallet, error) {
	wt, err := s.ledger.WalletType(r.Context(), wal.ID)
	if err != nil {
		return Wallet{}, err
	}
	out := Wallet{ID: walletID(wal.ID), UserID: userID(wal.UserID), Status: string(wal.Status), WalletType: wt, Accounts: []WalletAccount{}}
	for _, a := range accs {
		out.Accounts = append(out.Accounts, WalletAccount{ID: accountID(a.ID), Currency: a.Currency, Purpose: string(a.Purpose)})
	}
	return out, nil
}

func (s *Server) getWallet(w http.ResponseWriter, r *http.Request) {
	wal, accs, ok := s.loadWallet(w, r)
	if !ok {
		return
	}
	out, err := s.walletView(r, wal, accs)
	if err != nil {
		s.unavailable(w, "reading wallet", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// Balance is one account's balance as the API shows it.
type Balance struct {
	Currency  string `json:"currency"`
	Purpose   string `json:"purpose"`
	Available string `json:"available"`
	Pending   string `json:"pending"`
	Posted    string `json:"posted"`
}

func (s *Server) walletBalances(w http.ResponseWriter, r *http.Request) {
	wal, accs, ok := s.loadWallet(w, r)
	if !ok {
		return
	}
	out := struct {
		WalletID string    `json:"wallet_id"`
		Balances []Balance `json:"balances"`
	}{WalletID: walletID(wal.ID), Balances: []Balance{}}
	for _, a := range accs {
		b, err := s.ledger.Balance(r.Context(), a.ID)
		if err != nil {
			s.unavailable(w, "reading balance", err)
			return
		}
		exp := s.exponent(a.Currency)
		out.Balances = append(out.Balances, Balance{Currency: a.Currency, Purpose: string(a.Purpose),
			Available: b.Available.StringFixed(exp), Pending: b.Pending.StringFixed(exp), Posted: b.Posted.StringFixed(exp)})
	}
	writeJSON(w, http.StatusOK, out)
}

// StatementLine is one line of a wallet statement.
type StatementLine struct {
	PaymentID string    `json:"payment_id"`
	At        time.Time `json:"at"`
	Code      string    `json:"code"`
	Amount    string    `json:"amount"` // signed: credits positive
	Pending   string    `json:"pending,omitempty"`
	Balance   string    `json:"balance"`
}

func (s *Server) walletStatement(w http.ResponseWriter, r *http.Request) {
	wal, accs, ok := s.loadWallet(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var acc *ledger.Account
	currency := q.Get("currency")
	for i, a := range accs {
		if a.Purpose == ledger.Main && (currency == "" || a.Currency == currency) {
			if currency == "" && acc != nil {
				problem.Write(w, problem.New(http.StatusUnprocessableEntity, "currency_required",
					"the wallet holds several currencies; name one with ?currency="))
				return
			}
			acc = &accs[i]
		}
	}
	if acc == nil {
		problem.Write(w, problem.New(http.StatusNotFound, "account_not_found", "the wallet has no main account in "+currency))
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			problem.Write(w, problem.New(http.StatusUnprocessableEntity, "invalid_limit", "limit must be 1 to 1000"))
			return
		}
		limit = n
	}
	page, err := s.ledger.Statement(r.Context(), acc.ID, ledger.StatementQuery{Cursor: q.Get("cursor"), Limit: limit})
	if errors.Is(err, ledger.ErrInvalid) {
		problem.Write(w, problem.New(http.StatusUnprocessableEntity, "invalid_cursor", "the cursor is not one this API gave out"))
		return
	}
	if err != nil {
		s.unavailable(w, "reading statement", err)
		return
	}
	exp := s.exponent(acc.Currency)
	out := struct {
		WalletID   string          `json:"wallet_id"`
		AccountID  string          `json:"account_id"`
		Currency   string          `json:"currency"`
		Lines      []StatementLine `json:"lines"`
		NextCursor string          `json:"next_cursor,omitempty"`
	}{WalletID: walletID(wal.ID), AccountID: accountID(acc.ID), Currency: acc.Currency, Lines: []StatementLine{}, NextCursor: page.Next}
	for _, l := range page.Lines {
		line := StatementLine{PaymentID: l.PaymentID, At: l.At, Code: string(l.Code), Amount: l.Posted.StringFixed(exp), Balance: l.Balance.StringFixed(exp)}
		if !l.Pending.IsZero() {
			line.Pending = l.Pending.StringFixed(exp)
		}
		out.Lines = append(out.Lines, line)
	}
	writeJSON(w, http.StatusOK, out)
}

// setWalletStatus serves freeze, unfreeze and close.
func (s *Server) setWalletStatus(status ledger.WalletStatus) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		wal, accs, ok := s.loadWallet(w, r)
		if !ok {
			return
		}
		if wal.Status == ledger.WalletClosed && status != ledger.WalletClosed {
			problem.Write(w, problem.New(http.StatusConflict, "wallet_closed", "a closed wallet cannot be reopened"))
			return
		}
		if status == ledger.WalletClosed {
			for _, a := range accs {
				b, err := s.ledger.Balance(r.Context(), a.ID)
				if err != nil {
					s.unavailable(w, "reading balance", err)
					return
				}
				if !b.Posted.IsZero() || !b.Pending.IsZero() {
					problem.Write(w, problem.New(http.StatusConflict, "wallet_not_empty",
						"the wallet still holds "+b.Posted.String()+" "+a.Currency+"; pay it out before closing"))
					return
				}
			}
		}
		if err := s.ledger.SetWalletStatus(r.Context(), wal.ID, status); err != nil {
			s.unavailable(w, "setting wallet status", err)
			return
		}
		wal.Status = status
		out, err := s.walletView(r, wal, accs)
		if err != nil {
			s.unavailable(w, "reading wallet", err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) exponent(currency string) int32 {
	c, _ := s.ledger.Currency(currency)
	return c.Exponent
}
