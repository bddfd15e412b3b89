package schemas

import (
	"errors"
	"fmt"
	"time"
)

// Meta is what every record carries for identity and correlation.
type Meta struct {
	EventID   string // unique per record written
	PaymentID string
	// SchemaVersion is the version the record was written with; the encoder sets it.
	SchemaVersion int
	Trace         string // W3C traceparent of the originating request
}

// PaymentIDValue names the payment in the runner's log lines.
func (m Meta) PaymentIDValue() string { return m.PaymentID }

// ErrMissingField is wrapped when a required field is empty.
var ErrMissingField = errors.New("missing field")

func (m Meta) validate(paymentRequired bool) error {
	if m.EventID == "" {
		return fmt.Errorf("%w: EventID", ErrMissingField)
	}
	if paymentRequired && m.PaymentID == "" {
		return fmt.Errorf("%w: PaymentID", ErrMissingField)
	}
	return nil
}

func (m Meta) native(version int) map[string]any {
	return map[string]any{"event_id": m.EventID, "payment_id": m.PaymentID,
		"schema_version": version, "trace": m.Trace}
}

func readMeta(f *fields) Meta {
	return Meta{EventID: f.str("event_id"), PaymentID: f.str("payment_id"),
		SchemaVersion: f.int("schema_version"), Trace: f.str("trace")}
}

// Payment is the record that evolves down the stages; see avro/payment.v2.avsc.
type Payment struct {
	Meta
	CreatedAt      time.Time
	Subsidiary     string
	Channel        string
	IdempotencyKey string
	Type           string
	PayerWallet    string // the record key
	PayeeWallet    string
	Amount         Money
	Method         string
	Reference      string
	Metadata       map[string]string
	// Since version 2.
	Description     string
	MCC             string
	Biller          string
	CustomerRef     string
	Phone           string
	Operation       string      // "" for a new payment; capture, void, adjust, refund
	TargetPaymentID string      // the payment an operation or a refund acts on
	CaptureMode     string      // release_rest or keep_rest
	Validation      *Validation // nil until validated
	Risk            *Risk       // nil until screened
	Fees            []FeeLine   // nil until priced; empty when priced free
	Rewards         []Reward    // nil until the loyalty stage ran
	Route           *Route      // nil until routed
}

// Validation is the validation stage's decision.
type Validation struct {
	Result      string // accepted or rejected
	ReasonCodes []string
	At          time.Time
}

// Risk is the risk stage's decision.
type Risk struct {
	Decision    string // approve, review or reject
	Score       int    // 0..1000
	ReasonCodes []string
	At          time.Time
}

// FeeLine is one fee the fee stage charges, with its VAT.
type FeeLine struct {
	Code    string
	Amount  Money // before VAT
	VATRate string
	VAT     Money
}

// Reward is one loyalty effect.
type Reward struct {
	Campaign string
	Kind     string
	Amount   Money
	Points   int64
}

// Route is the routing stage's decision.
type Route struct {
	Kind      string // internal or connector
	Connector string
	Reason    string
}

func (p *Payment) native(version int) (map[string]any, error) {
	if err := p.Meta.validate(true); err != nil {
		return nil, err
	}
	amount, err := p.Amount.native()
	if err != nil {
		return nil, fmt.Errorf("field Amount: %w", err)
	}
	m := p.Meta.native(version)
	for k, v := range map[string]any{
		"created_at": micros(p.CreatedAt), "subsidiary": p.Subsidiary, "channel": p.Channel,
		"idempotency_key": p.IdempotencyKey, "type": p.Type, "payer_wallet": p.PayerWallet,
		"payee_wallet": p.PayeeWallet, "amount": amount, "method": p.Method,
		"reference": p.Reference, "metadata": strMapNative(p.Metadata),
		"validation": nil, "risk": nil, "fees": nil, "rewards": nil, "route": nil,
		"description": p.Description, "mcc": p.MCC, "biller": p.Biller, "customer_ref": p.CustomerRef,
		"phone": p.Phone, "operation": p.Operation, "target_payment_id": p.TargetPaymentID,
		"capture_mode": p.CaptureMode,
	} {
		m[k] = v
	}
	if v := p.Validation; v != nil {
		m["validation"] = optional("paystream.Validation", map[string]any{
			"result": v.Result, "reason_codes": strsNative(v.ReasonCodes), "at": micros(v.At)})
	}
	if r := p.Risk; r != nil {
		m["risk"] = optional("paystream.Risk", map[string]any{"decision": r.Decision,
			"score": r.Score, "reason_codes": strsNative(r.ReasonCodes), "at": micros(r.At)})
	}
	if p.Fees != nil {
		lines := make([]any, len(p.Fees))
		for i, l := range p.Fees {
			a, err := l.Amount.native()
			if err != nil {
				return nil, fmt.Errorf("field Fees[%d].Amount: %w", i, err)
			}
			vat, err := l.VAT.native()
			if err != nil {
				return nil, fmt.Errorf("field Fees[%d].VAT: %w", i, err)
			}
			lines[i] = map[string]any{"code": l.Code, "amount": a, "vat_rate": l.VATRate, "vat": vat}
		}
		m["fees"] = optional("array", lines)
	}
	if p.Rewards != nil {
		rs := make([]any, len(p.Rewards))
		for i, r := range p.Rewards {
			a, err := r.Amount.native()
			if err != nil {
				return nil, fmt.Errorf("field Rewards[%d].Amount: %w", i, err)
			}
			rs[i] = map[string]any{"campaign": r.Campaign, "kind": r.Kind, "amount": a, "points": r.Points}
		}
		m["rewards"] = optional("array", rs)
	}
	if r := p.Route; r != nil {
		m["route"] = optional("paystream.Route", map[string]any{"kind": r.Kind, "connector": r.Connector, "reason": r.Reason})
	}
	return m, nil
}

func (p *Payment) fromNative(v any) error {
	f := newFields(v, "Payment")
	*p = Payment{Meta: readMeta(f), CreatedAt: f.time("created_at"), Subsidiary: f.str("subsidiary"),
		Channel: f.str("channel"), IdempotencyKey: f.str("idempotency_key"), Type: f.str("type"),
		PayerWallet: f.str("payer_wallet"), PayeeWallet: f.str("payee_wallet"), Amount: f.money("amount"),
		Method: f.str("method"), Reference: f.str("reference"), Metadata: f.strMap("metadata"),
		Description: f.str("description"), MCC: f.str("mcc"), Biller: f.str("biller"), CustomerRef: f.str("customer_ref"),
		Phone: f.str("phone"), Operation: f.str("operation"), TargetPaymentID: f.str("target_payment_id"),
		CaptureMode: f.str("capture_mode")}
	if r := f.record("validation", true); r != nil {
		p.Validation = &Validation{Result: r.str("result"), ReasonCodes: r.strs("reason_codes"), At: r.time("at")}
		f.merge(r)
	}
	if r := f.record("risk", true); r != nil {
		p.Risk = &Risk{Decision: r.str("decision"), Score: r.int("score"), ReasonCodes: r.strs("reason_codes"), At: r.time("at")}
		f.merge(r)
	}
	if f.union("fees") != nil {
		p.Fees = []FeeLine{}
		for _, r := range f.records("fees", true) {
			p.Fees = append(p.Fees, FeeLine{Code: r.str("code"), Amount: r.money("amount"), VATRate: r.str("vat_rate"), VAT: r.money("vat")})
			f.merge(r)
		}
	}
	if f.union("rewards") != nil {
		p.Rewards = []Reward{}
		for _, r := range f.records("rewards", true) {
			p.Rewards = append(p.Rewards, Reward{Campaign: r.str("campaign"), Kind: r.str("kind"),
				Amount: r.money("amount"), Points: int64(r.int("points"))})
			f.merge(r)
		}
	}
	if r := f.record("route", true); r != nil {
		p.Route = &Route{Kind: r.str("kind"), Connector: r.str("connector"), Reason: r.str("reason")}
		f.merge(r)
	}
	return f.err
}

// PaymentOutcome is how a payment ended; see avro/payment_outcome.v2.avsc.
type PaymentOutcome struct {
	Meta
	OccurredAt    time.Time
	Status        string // posted, rejected, failed, pending
	Stage         string
	ReasonCode    string
	Reason        string
	Amount        Money
	Postings      []PostingLine
	BalancesAfter []BalanceAfter
	// Since version 2.
	Type      string
	Fees      []OutcomeFee
	Rewards   []Reward
	Decisions []Decision
}

// OutcomeFee is a fee line the payment paid.
type OutcomeFee struct {
	Code   string
	Amount Money
	VAT    Money
}

// Decision is one stage's decision about a payment.
type Decision struct {
	Stage    string
	Decision string
	Reasons  []string
}

// PostingLine summarises one transfer of the posting.
type PostingLine struct {
	TransferID    string
	Code          string
	DebitAccount  string
	CreditAccount string
	Amount        Money
}

// BalanceAfter is one account's balance after the posting.
type BalanceAfter struct {
	Wallet    string
	Account   string
	Balance   Money
	Available Money
}

func (o *PaymentOutcome) native(version int) (map[string]any, error) {
	if err := o.Meta.validate(true); err != nil {
		return nil, err
	}
	amount, err := o.Amount.native()
	if err != nil {
		return nil, fmt.Errorf("field Amount: %w", err)
	}
	m := o.Meta.native(version)
	m["occurred_at"], m["status"], m["stage"] = micros(o.OccurredAt), o.Status, o.Stage
	m["reason_code"], m["reason"], m["amount"] = o.ReasonCode, o.Reason, amount
	ps := make([]any, len(o.Postings))
	for i, p := range o.Postings {
		a, err := p.Amount.native()
		if err != nil {
			return nil, fmt.Errorf("field Postings[%d].Amount: %w", i, err)
		}
		ps[i] = map[string]any{"transfer_id": p.TransferID, "code": p.Code,
			"debit_account": p.DebitAccount, "credit_account": p.CreditAccount, "amount": a}
	}
	bs := make([]any, len(o.BalancesAfter))
	for i, b := range o.BalancesAfter {
		bal, err := b.Balance.native()
		if err != nil {
			return nil, fmt.Errorf("field BalancesAfter[%d].Balance: %w", i, err)
		}
		av, err := b.Available.native()
		if err != nil {
			return nil, fmt.Errorf("field BalancesAfter[%d].Available: %w", i, err)
		}
		bs[i] = map[string]any{"wallet": b.Wallet, "account": b.Account, "balance": bal, "available": av}
	}
	m["postings"], m["balances_after"] = ps, bs
	m["type"] = o.Type
	fees := make([]any, len(o.Fees))
	for i, fl := range o.Fees {
		a, err := fl.Amount.native()
		if err != nil {
			return nil, fmt.Errorf("Fees[%d].Amount: %w", i, err)
		}
		vat, err := fl.VAT.native()
		if err != nil {
			return nil, fmt.Errorf("Fees[%d].VAT: %w", i, err)
		}
		fees[i] = map[string]any{"code": fl.Code, "amount": a, "vat": vat}
	}
	rewards := make([]any, len(o.Rewards))
	for i, r := range o.Rewards {
		a, err := r.Amount.native()
		if err != nil {
			return nil, fmt.Errorf("Rewards[%d].Amount: %w", i, err)
		}
		rewards[i] = map[string]any{"campaign": r.Campaign, "kind": r.Kind, "amount": a, "points": r.Points}
	}
	decisions := make([]any, len(o.Decisions))
	for i, d := range o.Decisions {
		decisions[i] = map[string]any{"stage": d.Stage, "decision": d.Decision, "reasons": strsNative(d.Reasons)}
	}
	m["fees"], m["rewards"], m["decisions"] = fees, rewards, decisions
	return m, nil
}

func (o *PaymentOutcome) fromNative(v any) error {
	f := newFields(v, "PaymentOutcome")
	*o = PaymentOutcome{Meta: readMeta(f), OccurredAt: f.time("occurred_at"), Status: f.str("status"),
		Stage: f.str("stage"), ReasonCode: f.str("reason_code"), Reason: f.str("reason"), Amount: f.money("amount")}
	for _, r := range f.records("postings", false) {
		o.Postings = append(o.Postings, PostingLine{TransferID: r.str("transfer_id"), Code: r.str("code"),
			DebitAccount: r.str("debit_account"), CreditAccount: r.str("credit_account"), Amount: r.money("amount")})
		f.merge(r)
	}
	for _, r := range f.records("balances_after", false) {
		o.BalancesAfter = append(o.BalancesAfter, BalanceAfter{Wallet: r.str("wallet"), Account: r.str("account"),
			Balance: r.money("balance"), Available: r.money("available")})
		f.merge(r)
	}
	o.Type = f.str("type")
	for _, r := range f.records("fees", false) {
		o.Fees = append(o.Fees, OutcomeFee{Code: r.str("code"), Amount: r.money("amount"), VAT: r.money("vat")})
		f.merge(r)
	}
	for _, r := range f.records("rewards", false) {
		o.Rewards = append(o.Rewards, Reward{Campaign: r.str("campaign"), Kind: r.str("kind"),
			Amount: r.money("amount"), Points: int64(r.int("points"))})
		f.merge(r)
	}
	for _, r := range f.records("decisions", false) {
		o.Decisions = append(o.Decisions, Decision{Stage: r.str("stage"), Decision: r.str("decision"), Reasons: r.strs("reasons")})
		f.merge(r)
	}
	return f.err
}

// ConnectorRequest asks a counterparty to act; see avro/connector_request.v1.avsc.
type ConnectorRequest struct {
	Meta
	CreatedAt      time.Time
	Connector      string
	Operation      string
	IdempotencyKey string
	Amount         Money
	Account        string
	Details        map[string]string
}

func (c *ConnectorRequest) native(version int) (map[string]any, error) {
	if err := c.Meta.validate(true); err != nil {
		return nil, err
	}
	amount, err := c.Amount.native()
	if err != nil {
		return nil, fmt.Errorf("field Amount: %w", err)
	}
	m := c.Meta.native(version)
	m["created_at"], m["connector"], m["operation"] = micros(c.CreatedAt), c.Connector, c.Operation
	m["idempotency_key"], m["amount"], m["account"] = c.IdempotencyKey, amount, c.Account
	m["details"] = strMapNative(c.Details)
	return m, nil
}

func (c *ConnectorRequest) fromNative(v any) error {
	f := newFields(v, "ConnectorRequest")
	*c = ConnectorRequest{Meta: readMeta(f), CreatedAt: f.time("created_at"), Connector: f.str("connector"),
		Operation: f.str("operation"), IdempotencyKey: f.str("idempotency_key"), Amount: f.money("amount"),
		Account: f.str("account"), Details: f.strMap("details")}
	return f.err
}

// ConnectorResult is a counterparty's answer; see avro/connector_result.v1.avsc.
type ConnectorResult struct {
	Meta
	OccurredAt        time.Time
	RequestEventID    string
	Connector         string
	Operation         string
	Status            string // succeeded, failed, unknown
	ExternalReference string
	ReasonCode        string
	Amount            *Money // what the counterparty confirmed, when it says
}

func (c *ConnectorResult) native(version int) (map[string]any, error) {
	if err := c.Meta.validate(true); err != nil {
		return nil, err
	}
	m := c.Meta.native(version)
	m["occurred_at"], m["request_event_id"], m["connector"] = micros(c.OccurredAt), c.RequestEventID, c.Connector
	m["operation"], m["status"], m["external_reference"] = c.Operation, c.Status, c.ExternalReference
	m["reason_code"], m["amount"] = c.ReasonCode, nil
	if c.Amount != nil {
		a, err := c.Amount.native()
		if err != nil {
			return nil, fmt.Errorf("field Amount: %w", err)
		}
		m["amount"] = optional("paystream.Money", a)
	}
	return m, nil
}

func (c *ConnectorResult) fromNative(v any) error {
	f := newFields(v, "ConnectorResult")
	*c = ConnectorResult{Meta: readMeta(f), OccurredAt: f.time("occurred_at"), RequestEventID: f.str("request_event_id"),
		Connector: f.str("connector"), Operation: f.str("operation"), Status: f.str("status"),
		ExternalReference: f.str("external_reference"), ReasonCode: f.str("reason_code"), Amount: f.optMoney("amount")}
	return f.err
}

// StatementLine is one line of a bank or PSP file; see avro/statement_line.v1.avsc.
type StatementLine struct {
	Meta         // PaymentID is empty when the file does not reference a payment
	Source       string
	FileID       string
	LineID       string
	Account      string
	BookedAt     time.Time
	ValueDate    time.Time // a date, at UTC midnight
	Direction    string    // credit or debit
	Amount       Money
	Reference    string
	Counterparty string
}

func (s *StatementLine) native(version int) (map[string]any, error) {
	if err := s.Meta.validate(false); err != nil {
		return nil, err
	}
	amount, err := s.Amount.native()
	if err != nil {
		return nil, fmt.Errorf("field Amount: %w", err)
	}
	m := s.Meta.native(version)
	m["source"], m["file_id"], m["line_id"], m["account"] = s.Source, s.FileID, s.LineID, s.Account
	y, mo, d := s.ValueDate.Date()
	m["booked_at"], m["value_date"] = micros(s.BookedAt), time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
	m["direction"], m["amount"], m["reference"], m["counterparty"] = s.Direction, amount, s.Reference, s.Counterparty
	return m, nil
}

func (s *StatementLine) fromNative(v any) error {
	f := newFields(v, "StatementLine")
	*s = StatementLine{Meta: readMeta(f), Source: f.str("source"), FileID: f.str("file_id"), LineID: f.str("line_id"),
		Account: f.str("account"), BookedAt: f.time("booked_at"), ValueDate: f.time("value_date"),
		Direction: f.str("direction"), Amount: f.money("amount"), Reference: f.str("reference"),
		Counterparty: f.str("counterparty")}
	return f.err
}

// ReconResult is reconciliation's verdict; see avro/recon_result.v1.avsc.
type ReconResult struct {
	Meta             // PaymentID is empty when nothing on the ledger side matched
	OccurredAt       time.Time
	Status           string // matched, missing_in_ledger, missing_in_statement, amount_mismatch, duplicate
	StatementLineIDs []string
	TransferIDs      []string
	Expected         *Money // what the ledger posted
	Actual           *Money // what the statement says
	Note             string
}

func (r *ReconResult) native(version int) (map[string]any, error) {
	if err := r.Meta.validate(false); err != nil {
		return nil, err
	}
	m := r.Meta.native(version)
	m["occurred_at"], m["status"], m["note"] = micros(r.OccurredAt), r.Status, r.Note
	m["statement_line_ids"], m["transfer_ids"] = strsNative(r.StatementLineIDs), strsNative(r.TransferIDs)
	for name, mv := range map[string]*Money{"expected": r.Expected, "actual": r.Actual} {
		m[name] = nil
		if mv != nil {
			a, err := mv.native()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			m[name] = optional("paystream.Money", a)
		}
	}
	return m, nil
}

func (r *ReconResult) fromNative(v any) error {
	f := newFields(v, "ReconResult")
	*r = ReconResult{Meta: readMeta(f), OccurredAt: f.time("occurred_at"), Status: f.str("status"),
		StatementLineIDs: f.strs("statement_line_ids"), TransferIDs: f.strs("transfer_ids"),
		Expected: f.optMoney("expected"), Actual: f.optMoney("actual"), Note: f.str("note")}
	return f.err
}
