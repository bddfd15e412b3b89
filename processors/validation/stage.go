package validation

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/paystream/paystream/ledger"
	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/processors/pipeline"
	"github.com/paystream/paystream/processors/rulecache"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// Operations on an earlier payment, as schemas.Payment.Operation carries them.
var Operations = []string{"capture", "void", "adjust", "refund"}

// walletRoles says which wallets a payment type needs: payer, payee.
var walletRoles = map[string][2]bool{
	"topup":            {false, true},
	"withdrawal":       {true, false},
	"transfer":         {true, true},
	"merchant_payment": {true, true},
	"bill_payment":     {true, false},
	"airtime_topup":    {true, false},
	"refund":           {true, true},
	"hold":             {true, true},
}

// reasonText is the outcome's human-readable reason per code; it never names a person.
var reasonText = map[string]string{
	ReasonInvalidRecord:        "the payment record is malformed",
	ReasonInvalidWalletRef:     "a wallet reference is malformed",
	ReasonMissingWallet:        "the payment type needs a wallet the payment lacks",
	ReasonUnsupportedType:      "unknown payment type",
	ReasonUnsupportedOperation: "unknown operation",
	ReasonMissingTarget:        "the operation names no payment to act on",
	ReasonUnknownCurrency:      "the currency is not handled",
	ReasonInvalidAmount:        "the amount is not positive or has too many fraction digits",
	ReasonSameWallet:           "payer and payee are the same wallet",
	ReasonWalletNotFound:       "a wallet does not exist",
	ReasonWalletFrozen:         "a wallet is frozen",
	ReasonWalletClosed:         "a wallet is closed",
	ReasonUserNotActive:        "a wallet's user is not active",
	ReasonAccountNotFound:      "a wallet has no account in the currency",
	ReasonAccountFrozen:        "a wallet's account is frozen",
	ReasonAccountClosed:        "a wallet's account is closed",
	ReasonNotAMerchant:         "the payee is not a merchant",
	ReasonTypeNotPermitted:     "the payer's KYC level does not permit this payment type",
	ReasonBelowMinimum:         "the amount is below the minimum for the payer's KYC level",
	ReasonKYCLimitExceeded:     "the amount is above the maximum for the payer's KYC level",
}

// Stage is the validation stage. It is safe for concurrent use.
type Stage struct {
	ledger  *ledger.Ledger
	parties *pipeline.Parties
	rules   *rulecache.Cache[*ruleSet]
	cfg     Config
}

// New returns the stage with its rules loaded from pool; l reads wallets, users and
// accounts.
func New(ctx context.Context, pool *pgxpool.Pool, l *ledger.Ledger, cfg Config) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuring validation: %w", err)
	}
	cfg = cfg.withDefaults()
	s := &Stage{ledger: l, cfg: cfg,
		parties: pipeline.NewParties(l, func(p *schemas.Payment) string {
			if p.Operation != "" {
				return "" // operations are checked for shape: no account needed
			}
			return p.Amount.Currency
		}),
		rules: rulecache.New(NewRules(pool).load, cfg.RefreshInterval, cfg.MaxStale, cfg.Logger)}
	if err := s.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("starting validation: %w", err)
	}
	return s, nil
}

// Wallets is the stage's batch read of wallets, which a later stage of the same hop may
// follow (pipeline.Parties.Follow) rather than read them again.
func (s *Stage) Wallets() *pipeline.Parties { return s.parties }

// Prepare reads the wallets of a whole batch at once.
func (s *Stage) Prepare(ctx context.Context, ins []*processors.Input) error {
	return s.parties.Prepare(ctx, ins)
}

// Refresh reloads the rules now instead of at the next refresh interval.
func (s *Stage) Refresh(ctx context.Context) error { return s.rules.Refresh(ctx) }

// Definition is the stage's wiring for the runner's registry.
func (s *Stage) Definition() processors.Definition {
	return processors.Definition{Name: pipeline.Validation, Input: catalog.PaymentsRequested, Group: catalog.GroupValidation,
		Outputs: []catalog.Topic{catalog.PaymentsValidated, catalog.PaymentsOutcomes}, Stage: s}
}

// Process validates one payment: accepted ones go on to payments.validated, rejected ones
// end with an outcome. Database errors are transient: the runner retries the batch.
func (s *Stage) Process(ctx context.Context, in *processors.Input, _ processors.State) (processors.Result, error) {
	p, ok := in.Value.(*schemas.Payment)
	if !ok {
		return processors.Result{}, processors.Permanent(fmt.Errorf("validating: %T is not a payment", in.Value))
	}
	rules, err := s.rules.Get(ctx)
	if err != nil {
		return processors.Result{}, fmt.Errorf("validating payment: %w", err)
	}
	code, err := s.check(ctx, rules, p)
	if err != nil {
		return processors.Result{}, fmt.Errorf("validating payment: %w", err)
	}
	now := s.cfg.Now().UTC()
	if code != "" {
		p.Validation = &schemas.Validation{Result: Rejected, ReasonCodes: []string{code}, At: now}
		return pipeline.Reject(p, pipeline.Validation, "", code, reasonText[code], now), nil
	}
	p.Validation = &schemas.Validation{Result: Accepted, ReasonCodes: []string{}, At: now}
	return processors.Result{Outputs: []processors.Output{pipeline.Forward(p, catalog.PaymentsValidated)}}, nil
}

// check returns the reason code of the first rule p breaks, or "" when it breaks none.
// Rules run from the cheapest (the record alone) to those that need the database.
func (s *Stage) check(ctx context.Context, rules *ruleSet, p *schemas.Payment) (string, error) {
	if p.PaymentID == "" || p.Amount.Currency == "" {
		return ReasonInvalidRecord, nil
	}
	if p.Operation != "" {
		return s.checkOperation(ctx, p)
	}
	roles, ok := walletRoles[p.Type]
	if !ok {
		return ReasonUnsupportedType, nil
	}
	cur, ok := s.ledger.Currency(p.Amount.Currency)
	if !ok {
		return ReasonUnknownCurrency, nil
	}
	if a := p.Amount.Amount; !a.IsPositive() || !a.Equal(a.Truncate(cur.Exponent)) {
		return ReasonInvalidAmount, nil
	}
	var ids []ledger.WalletID
	for i, ref := range []string{p.PayerWallet, p.PayeeWallet} {
		switch {
		case roles[i] && ref == "":
			return ReasonMissingWallet, nil
		case !roles[i] && ref != "":
			return ReasonInvalidRecord, nil
		case ref == "":
			continue
		}
		id, ok := ledger.ParseWalletRef(ref)
		if !ok {
			return ReasonInvalidWalletRef, nil
		}
		ids = append(ids, id)
	}
	if len(ids) == 2 && ids[0] == ids[1] {
		return ReasonSameWallet, nil
	}
	parties, err := s.parties.Get(ctx, p.Amount.Currency, ids...)
	if err != nil {
		return "", err
	}
	payer, payerOK := partyOf(parties, p.PayerWallet)
	payee, payeeOK := partyOf(parties, p.PayeeWallet)
	if (roles[0] && !payerOK) || (roles[1] && !payeeOK) {
		return ReasonWalletNotFound, nil
	}
	if roles[0] {
		if code := checkParty(payer, false, rules.settings); code != "" {
			return code, nil
		}
	}
	if roles[1] {
		if code := checkParty(payee, true, rules.settings); code != "" {
			return code, nil
		}
	}
	if p.Type == "merchant_payment" && payee.User.Kind != ledger.Merchant {
		return ReasonNotAMerchant, nil
	}
	// The KYC level that counts is the paying user's; a top-up has no payer, so the
	// credited user's.
	level := payee.User.KYCLevel
	if roles[0] {
		level = payer.User.KYCLevel
	}
	limit, ok := rules.limits[limitKey{level, p.Type, p.Amount.Currency}]
	switch {
	case !ok && rules.settings.RequireKYCLimit, ok && !limit.Allowed:
		return ReasonTypeNotPermitted, nil
	case !ok:
		return "", nil
	case p.Amount.Amount.LessThan(limit.Min):
		return ReasonBelowMinimum, nil
	case limit.Max != nil && p.Amount.Amount.GreaterThan(*limit.Max):
		return ReasonKYCLimitExceeded, nil
	}
	return "", nil
}

func partyOf(parties map[ledger.WalletID]ledger.Party, ref string) (ledger.Party, bool) {
	id, ok := ledger.ParseWalletRef(ref)
	if !ok {
		return ledger.Party{}, false
	}
	p, ok := parties[id]
	return p, ok
}

// checkParty checks one wallet's status, user and account; credited says the payment only
// credits it.
func checkParty(p ledger.Party, credited bool, s Settings) string {
	frozenOK := credited && s.FrozenMayReceive
	switch {
	case p.Wallet.Status == ledger.WalletClosed:
		return ReasonWalletClosed
	case p.Wallet.Status == ledger.WalletFrozen && !frozenOK:
		return ReasonWalletFrozen
	case p.User.Status != "active":
		return ReasonUserNotActive
	case p.Account == nil:
		return ReasonAccountNotFound
	case p.Account.Closed:
		return ReasonAccountClosed
	case p.Account.Frozen && !frozenOK:
		return ReasonAccountFrozen
	}
	return ""
}

// checkOperation checks the shape of a capture, void, adjust or refund of an earlier
// payment: the ledger enforces amounts against what the hold or capture allows, and a
// frozen wallet must still be able to have its hold voided.
func (s *Stage) checkOperation(ctx context.Context, p *schemas.Payment) (string, error) {
	if !slices.Contains(Operations, p.Operation) {
		return ReasonUnsupportedOperation, nil
	}
	if p.TargetPaymentID == "" {
		return ReasonMissingTarget, nil
	}
	var ids []ledger.WalletID
	for _, ref := range []string{p.PayerWallet, p.PayeeWallet} {
		if ref == "" {
			continue
		}
		id, ok := ledger.ParseWalletRef(ref)
		if !ok {
			return ReasonInvalidWalletRef, nil
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return ReasonMissingWallet, nil
	}
	parties, err := s.parties.Get(ctx, "", ids...)
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		if _, ok := parties[id]; !ok {
			return ReasonWalletNotFound, nil
		}
	}
	return "", nil
}
