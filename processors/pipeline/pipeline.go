// Package pipeline holds what every stage of the payment chain shares: the stage names,
// the way a stage ends a payment (a rejection outcome carrying every decision so far) and
// the way it forwards one. The stages themselves live in their own packages; the runner
// drives them.
package pipeline

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/paystream/paystream/processors"
	"github.com/paystream/paystream/schemas"
	"github.com/paystream/paystream/schemas/catalog"
)

// Stage names, as `paystream run --stages` takes them and outcomes report them.
const (
	Validation = "validation"
	Risk       = "risk"
	Fee        = "fee"
	Loyalty    = "loyalty"
	Routing    = "routing"
	Posting    = "posting"
)

// Outcome statuses on payments.outcomes.
const (
	StatusPosted   = "posted"
	StatusRejected = "rejected"
	StatusFailed   = "failed"
	StatusPending  = "pending"
)

// NewEventID returns a fresh record id.
func NewEventID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Forward returns p as the next topic's record under a new event id. The key stays the
// input's (the payer's wallet), so the payment keeps its partition and its order.
func Forward(p *schemas.Payment, to catalog.Topic) processors.Output {
	next := *p
	next.EventID = NewEventID()
	return processors.Output{Topic: to, Value: &next}
}

// Decisions lists the decisions recorded on p so far, in chain order.
func Decisions(p *schemas.Payment) []schemas.Decision {
	var ds []schemas.Decision
	if v := p.Validation; v != nil {
		ds = append(ds, schemas.Decision{Stage: Validation, Decision: v.Result, Reasons: nonNil(v.ReasonCodes)})
	}
	if r := p.Risk; r != nil {
		ds = append(ds, schemas.Decision{Stage: Risk, Decision: r.Decision, Reasons: nonNil(r.ReasonCodes)})
	}
	if p.Fees != nil {
		ds = append(ds, schemas.Decision{Stage: Fee, Decision: "priced", Reasons: []string{}})
	}
	if p.Rewards != nil {
		ds = append(ds, schemas.Decision{Stage: Loyalty, Decision: "rewarded", Reasons: []string{}})
	}
	if r := p.Route; r != nil {
		reasons := []string{}
		if r.Connector != "" {
			reasons = append(reasons, r.Connector)
		}
		ds = append(ds, schemas.Decision{Stage: Routing, Decision: r.Kind, Reasons: reasons})
	}
	return ds
}

// Outcome builds p's outcome record with everything the chain decided about it.
func Outcome(p *schemas.Payment, stage, status, reasonCode, reason string, now time.Time) *schemas.PaymentOutcome {
	o := &schemas.PaymentOutcome{
		Meta:       schemas.Meta{EventID: NewEventID(), PaymentID: p.PaymentID, Trace: p.Trace},
		OccurredAt: now.UTC(), Status: status, Stage: stage, ReasonCode: reasonCode, Reason: reason,
		Amount: p.Amount, Type: p.Type, Decisions: Decisions(p),
	}
	for _, f := range p.Fees {
		o.Fees = append(o.Fees, schemas.OutcomeFee{Code: f.Code, Amount: f.Amount, VAT: f.VAT})
	}
	o.Rewards = append(o.Rewards, p.Rewards...)
	return o
}

// Reject ends p at stage with a reason code: its outcome goes to payments.outcomes, keyed
// like the payment, and the stage's decision (already set on p by the caller, or added
// here when decision is not empty) is part of it.
func Reject(p *schemas.Payment, stage, decision, reasonCode, reason string, now time.Time) processors.Result {
	o := Outcome(p, stage, StatusRejected, reasonCode, reason, now)
	if decision != "" {
		o.Decisions = append(o.Decisions, schemas.Decision{Stage: stage, Decision: decision, Reasons: []string{reasonCode}})
	}
	return processors.Result{
		Outputs:  []processors.Output{{Topic: catalog.PaymentsOutcomes, Value: o}},
		Rejected: reasonCode,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
