package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/shopspring/decimal"
)

// Code says what a transfer is within its payment.
type Code string

// Transfer codes.
const (
	CodePrincipal  Code = "principal"
	CodeFee        Code = "fee"
	CodeVAT        Code = "vat"
	CodeCommission Code = "commission"
	CodeReward     Code = "reward"
	CodeDiscount   Code = "discount"
	CodePoints     Code = "points"
	CodeFX         Code = "fx"
	CodeSettlement Code = "settlement"
	CodeAdjustment Code = "adjustment"
	CodeRefund     Code = "refund"
	CodeReserve    Code = "reserve"
	CodeCapture    Code = "capture"
	CodeRelease    Code = "release"
	CodeReversal   Code = "reversal"
	CodeRebalance  Code = "rebalance" // between the shards of one account
)

// Transfer moves Amount from Debit to Credit; both accounts must be in Currency.
type Transfer struct {
	Code     Code
	Debit    AccountID
	Credit   AccountID
	Amount   decimal.Decimal
	Currency string
	// MCC is the merchant category of the payee; a restricted account pays only the
	// categories it allows.
	MCC string
}

// Posting is a set of linked transfers of one payment, applied all-or-nothing.
type Posting struct {
	PaymentID string
	Transfers []Transfer
}

// StoredTransfer is a transfer as the ledger keeps it.
type StoredTransfer struct {
	ID        int64
	PaymentID string
	Code      Code
	Debit     AccountID
	Credit    AccountID
	Amount    decimal.Decimal // posted amount
	Pending   decimal.Decimal // change of the pending balances (negative releases)
	Currency  string
	HoldID    int64
	CreatedAt time.Time
}

// digest identifies a posting's content, so a replay with other content is caught.
func (p Posting) digest() []byte {
	h := sha256.New()
	var n [8]byte
	for _, t := range p.Transfers {
		h.Write([]byte(t.Code))
		h.Write([]byte{0})
		binary.BigEndian.PutUint64(n[:], uint64(t.Debit))
		h.Write(n[:])
		binary.BigEndian.PutUint64(n[:], uint64(t.Credit))
		h.Write(n[:])
		h.Write([]byte(t.Amount.String())) // String trims trailing zeros: 1.50 == 1.5
		h.Write([]byte{0})
		h.Write([]byte(t.Currency))
		h.Write([]byte{0})
		h.Write([]byte(t.MCC))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}
