package schemas

import (
	"fmt"
	"math"
	"slices"
)

// The hand-written codecs of the two records every payment stage reads and writes, for
// the schema version kind.fast names. They give the bytes, values and errors of the
// generic path (native, goavro, guard, fromNative) without its maps and reflection;
// fastcodec_test.go and the fuzz targets hold them to it. A new schema version is coded
// by the generic path until these are updated to it.

// fastRecord is a record with a hand-written codec.
type fastRecord interface {
	record
	appendAvro(b []byte, version int) ([]byte, error)
	readAvro(r *avroReader)
}

// Ranks of encoding errors: the generic path checks amounts first, in native's order, then
// goavro checks the rest.
const rankGoavro = math.MaxInt

func (w *avroWriter) meta(m Meta, version int) {
	w.str(m.EventID)
	w.str(m.PaymentID)
	w.long(int64(version))
	w.str(m.Trace)
}

func (r *avroReader) meta() Meta {
	return Meta{EventID: r.str(), PaymentID: r.str(), SchemaVersion: r.int(), Trace: r.str()}
}

// arrayStart and arrayEnd frame an array or map written in one block, as goavro writes it.
func (w *avroWriter) arrayStart(n int) {
	if n > 0 {
		w.long(int64(n))
	}
}

func (w *avroWriter) arrayEnd() { w.b = append(w.b, 0) }

// reward writes a paystream.Reward or paystream.OutcomeReward, which are alike.
func (w *avroWriter) reward(r Reward) error {
	w.str(r.Campaign)
	w.str(r.Kind)
	err := w.money(r.Amount)
	w.long(r.Points)
	return err
}

func (r *avroReader) reward() (Reward, error) {
	rw := Reward{Campaign: r.str(), Kind: r.str()}
	var err error
	rw.Amount, err = r.money()
	rw.Points = r.long()
	return rw, err
}

// Minimum encoded sizes of array items, for avroReader.block.
const (
	minFeeLine    = 6 // code, Money, vat_rate, Money
	minReward     = 5
	minOutcomeFee = 5
	minDecision   = 3
	minPosting    = 6
	minBalance    = 6
)

func (p *Payment) appendAvro(b []byte, version int) ([]byte, error) {
	if err := p.Meta.validate(true); err != nil {
		return nil, err
	}
	w := &avroWriter{b: b}
	w.meta(p.Meta, version)
	w.time(p.CreatedAt)
	w.str(p.Subsidiary)
	w.str(p.Channel)
	w.str(p.IdempotencyKey)
	w.str(p.Type)
	w.str(p.PayerWallet)
	w.str(p.PayeeWallet)
	if err := w.money(p.Amount); err != nil {
		w.fail(0, fmt.Errorf("field Amount: %w", err))
	}
	w.str(p.Method)
	w.str(p.Reference)
	w.strMap(p.Metadata)
	w.str(p.Description)
	w.str(p.MCC)
	w.str(p.Biller)
	w.str(p.CustomerRef)
	w.str(p.Phone)
	w.str(p.Operation)
	w.str(p.TargetPaymentID)
	w.str(p.CaptureMode)
	w.union(p.Validation != nil)
	if v := p.Validation; v != nil {
		w.str(v.Result)
		w.strs(v.ReasonCodes)
		w.time(v.At)
	}
	w.union(p.Risk != nil)
	if r := p.Risk; r != nil {
		w.str(r.Decision)
		if int(int32(r.Score)) != r.Score {
			w.fail(rankGoavro, fmt.Errorf(`cannot encode binary record "paystream.Payment" field "risk": `+
				`value does not match its schema: cannot encode binary record "paystream.Risk" field "score": `+
				`value does not match its schema: cannot encode binary int: provided Go int would lose precision: %d`, r.Score))
		}
		w.long(int64(r.Score))
		w.strs(r.ReasonCodes)
		w.time(r.At)
	}
	w.union(p.Fees != nil)
	if p.Fees != nil {
		w.arrayStart(len(p.Fees))
		for i, l := range p.Fees {
			w.str(l.Code)
			if err := w.money(l.Amount); err != nil {
				w.fail(0, fmt.Errorf("field Fees[%d].Amount: %w", i, err))
			}
			w.str(l.VATRate)
			if err := w.money(l.VAT); err != nil {
				w.fail(0, fmt.Errorf("field Fees[%d].VAT: %w", i, err))
			}
		}
		w.arrayEnd()
	}
	w.union(p.Rewards != nil)
	if p.Rewards != nil {
		w.arrayStart(len(p.Rewards))
		for i, rw := range p.Rewards {
			if err := w.reward(rw); err != nil {
				w.fail(0, fmt.Errorf("field Rewards[%d].Amount: %w", i, err))
			}
		}
		w.arrayEnd()
	}
	w.union(p.Route != nil)
	if r := p.Route; r != nil {
		w.str(r.Kind)
		w.str(r.Connector)
		w.str(r.Reason)
	}
	return w.b, w.err
}

func (p *Payment) readAvro(r *avroReader) {
	*p = Payment{Meta: r.meta(), CreatedAt: r.time(), Subsidiary: r.str(), Channel: r.str(),
		IdempotencyKey: r.str(), Type: r.str(), PayerWallet: r.str(), PayeeWallet: r.str()}
	var err error
	if p.Amount, err = r.money(); err != nil {
		r.invalid(0, fmt.Errorf("decoding Payment.amount: %w", err))
	}
	p.Method, p.Reference, p.Metadata = r.str(), r.str(), r.strMap()
	p.Description, p.MCC, p.Biller, p.CustomerRef = r.str(), r.str(), r.str(), r.str()
	p.Phone, p.Operation, p.TargetPaymentID, p.CaptureMode = r.str(), r.str(), r.str(), r.str()
	if r.union() {
		p.Validation = &Validation{Result: r.str(), ReasonCodes: r.strs(), At: r.time()}
	}
	if r.union() {
		p.Risk = &Risk{Decision: r.str(), Score: r.int(), ReasonCodes: r.strs(), At: r.time()}
	}
	if r.union() {
		p.Fees = []FeeLine{}
		for n := r.block(minFeeLine); n > 0; n = r.block(minFeeLine) {
			p.Fees = slices.Grow(p.Fees, n)
			for range n {
				i := len(p.Fees)
				l := FeeLine{Code: r.str()}
				if l.Amount, err = r.money(); err != nil {
					r.invalid(0, fmt.Errorf("decoding Payment.fees[%d].amount: %w", i, err))
				}
				l.VATRate = r.str()
				if l.VAT, err = r.money(); err != nil {
					r.invalid(0, fmt.Errorf("decoding Payment.fees[%d].vat: %w", i, err))
				}
				p.Fees = append(p.Fees, l)
			}
		}
	}
	if r.union() {
		p.Rewards = []Reward{}
		for n := r.block(minReward); n > 0; n = r.block(minReward) {
			p.Rewards = slices.Grow(p.Rewards, n)
			for range n {
				rw, err := r.reward()
				if err != nil {
					r.invalid(0, fmt.Errorf("decoding Payment.rewards[%d].amount: %w", len(p.Rewards), err))
				}
				p.Rewards = append(p.Rewards, rw)
			}
		}
	}
	if r.union() {
		p.Route = &Route{Kind: r.str(), Connector: r.str(), Reason: r.str()}
	}
}

// Ranks of the outcome's amounts in native's and fromNative's order, which is not the
// wire's.
const (
	rankAmount = iota
	rankPostings
	rankBalances
	rankFees
	rankRewards
)

func (o *PaymentOutcome) appendAvro(b []byte, version int) ([]byte, error) {
	if err := o.Meta.validate(true); err != nil {
		return nil, err
	}
	w := &avroWriter{b: b}
	w.meta(o.Meta, version)
	w.time(o.OccurredAt)
	w.str(o.Status)
	w.str(o.Stage)
	w.str(o.ReasonCode)
	w.str(o.Reason)
	if err := w.money(o.Amount); err != nil {
		w.fail(rankAmount, fmt.Errorf("field Amount: %w", err))
	}
	w.str(o.Type)
	w.arrayStart(len(o.Fees))
	for i, fl := range o.Fees {
		w.str(fl.Code)
		if err := w.money(fl.Amount); err != nil {
			w.fail(rankFees, fmt.Errorf("Fees[%d].Amount: %w", i, err))
		}
		if err := w.money(fl.VAT); err != nil {
			w.fail(rankFees, fmt.Errorf("Fees[%d].VAT: %w", i, err))
		}
	}
	w.arrayEnd()
	w.arrayStart(len(o.Rewards))
	for i, rw := range o.Rewards {
		if err := w.reward(rw); err != nil {
			w.fail(rankRewards, fmt.Errorf("Rewards[%d].Amount: %w", i, err))
		}
	}
	w.arrayEnd()
	w.arrayStart(len(o.Decisions))
	for _, d := range o.Decisions {
		w.str(d.Stage)
		w.str(d.Decision)
		w.strs(d.Reasons)
	}
	w.arrayEnd()
	w.arrayStart(len(o.Postings))
	for i, p := range o.Postings {
		w.str(p.TransferID)
		w.str(p.Code)
		w.str(p.DebitAccount)
		w.str(p.CreditAccount)
		if err := w.money(p.Amount); err != nil {
			w.fail(rankPostings, fmt.Errorf("field Postings[%d].Amount: %w", i, err))
		}
	}
	w.arrayEnd()
	w.arrayStart(len(o.BalancesAfter))
	for i, b := range o.BalancesAfter {
		w.str(b.Wallet)
		w.str(b.Account)
		if err := w.money(b.Balance); err != nil {
			w.fail(rankBalances, fmt.Errorf("field BalancesAfter[%d].Balance: %w", i, err))
		}
		if err := w.money(b.Available); err != nil {
			w.fail(rankBalances, fmt.Errorf("field BalancesAfter[%d].Available: %w", i, err))
		}
	}
	w.arrayEnd()
	return w.b, w.err
}

func (o *PaymentOutcome) readAvro(r *avroReader) {
	*o = PaymentOutcome{Meta: r.meta(), OccurredAt: r.time(), Status: r.str(), Stage: r.str(),
		ReasonCode: r.str(), Reason: r.str()}
	var err error
	if o.Amount, err = r.money(); err != nil {
		r.invalid(rankAmount, fmt.Errorf("decoding PaymentOutcome.amount: %w", err))
	}
	o.Type = r.str()
	for n := r.block(minOutcomeFee); n > 0; n = r.block(minOutcomeFee) {
		o.Fees = slices.Grow(o.Fees, n)
		for range n {
			i := len(o.Fees)
			fl := OutcomeFee{Code: r.str()}
			if fl.Amount, err = r.money(); err != nil {
				r.invalid(rankFees, fmt.Errorf("decoding PaymentOutcome.fees[%d].amount: %w", i, err))
			}
			if fl.VAT, err = r.money(); err != nil {
				r.invalid(rankFees, fmt.Errorf("decoding PaymentOutcome.fees[%d].vat: %w", i, err))
			}
			o.Fees = append(o.Fees, fl)
		}
	}
	for n := r.block(minReward); n > 0; n = r.block(minReward) {
		o.Rewards = slices.Grow(o.Rewards, n)
		for range n {
			rw, err := r.reward()
			if err != nil {
				r.invalid(rankRewards, fmt.Errorf("decoding PaymentOutcome.rewards[%d].amount: %w", len(o.Rewards), err))
			}
			o.Rewards = append(o.Rewards, rw)
		}
	}
	for n := r.block(minDecision); n > 0; n = r.block(minDecision) {
		o.Decisions = slices.Grow(o.Decisions, n)
		for range n {
			o.Decisions = append(o.Decisions, Decision{Stage: r.str(), Decision: r.str(), Reasons: r.strs()})
		}
	}
	for n := r.block(minPosting); n > 0; n = r.block(minPosting) {
		o.Postings = slices.Grow(o.Postings, n)
		for range n {
			i := len(o.Postings)
			p := PostingLine{TransferID: r.str(), Code: r.str(), DebitAccount: r.str(), CreditAccount: r.str()}
			if p.Amount, err = r.money(); err != nil {
				r.invalid(rankPostings, fmt.Errorf("decoding PaymentOutcome.postings[%d].amount: %w", i, err))
			}
			o.Postings = append(o.Postings, p)
		}
	}
	for n := r.block(minBalance); n > 0; n = r.block(minBalance) {
		o.BalancesAfter = slices.Grow(o.BalancesAfter, n)
		for range n {
			i := len(o.BalancesAfter)
			b := BalanceAfter{Wallet: r.str(), Account: r.str()}
			if b.Balance, err = r.money(); err != nil {
				r.invalid(rankBalances, fmt.Errorf("decoding PaymentOutcome.balances_after[%d].balance: %w", i, err))
			}
			if b.Available, err = r.money(); err != nil {
				r.invalid(rankBalances, fmt.Errorf("decoding PaymentOutcome.balances_after[%d].available: %w", i, err))
			}
			o.BalancesAfter = append(o.BalancesAfter, b)
		}
	}
}
