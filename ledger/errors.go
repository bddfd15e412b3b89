package ledger

import (
	"errors"
	"fmt"
)

// Sentinels; errors returned by this package wrap one of them, test with errors.Is.
var (
	ErrInvalid             = errors.New("invalid request")
	ErrTooManyDecimals     = errors.New("amount has more fraction digits than the currency allows")
	ErrNotPositive         = errors.New("amount must be positive")
	ErrTooLarge            = errors.New("amount too large")
	ErrUnknownCurrency     = errors.New("unknown currency")
	ErrUnknownAccount      = errors.New("unknown account")
	ErrCurrencyMismatch    = errors.New("currency does not match the account")
	ErrInsufficientFunds   = errors.New("insufficient funds")
	ErrAccountClosed       = errors.New("account closed")
	ErrAccountFrozen       = errors.New("account frozen")
	ErrCreditOnly          = errors.New("account accepts credits only")
	ErrMCCNotAllowed       = errors.New("merchant category not allowed on this account")
	ErrIdempotencyConflict = errors.New("same id with different content")
	ErrUnknownHold         = errors.New("unknown hold or operation")
	ErrHoldExceeded        = errors.New("amount exceeds what the hold allows")
	ErrRefundExceeded      = errors.New("refunds exceed the captured amount")
	ErrRefundsOutstanding  = errors.New("non-cancelled refunds exist")
	ErrAlreadyCancelled    = errors.New("operation already cancelled")
	ErrNotFound            = errors.New("not found")
)

// reasons are the stable codes stored with a rejected posting, so a replay returns an
// error that still matches its sentinel.
var reasons = map[string]error{
	"invalid":            ErrInvalid,
	"too_many_decimals":  ErrTooManyDecimals,
	"not_positive":       ErrNotPositive,
	"too_large":          ErrTooLarge,
	"unknown_currency":   ErrUnknownCurrency,
	"unknown_account":    ErrUnknownAccount,
	"currency_mismatch":  ErrCurrencyMismatch,
	"insufficient_funds": ErrInsufficientFunds,
	"account_closed":     ErrAccountClosed,
	"account_frozen":     ErrAccountFrozen,
	"credit_only":        ErrCreditOnly,
	"mcc_not_allowed":    ErrMCCNotAllowed,
}

// Reason returns the stable reason code of err ("insufficient_funds", ...), or "" when err
// wraps none of the posting sentinels. Stages put it in outcome records.
func Reason(err error) string {
	for code, s := range reasons {
		if errors.Is(err, s) {
			return code
		}
	}
	return ""
}

// FieldError names the field a problem was found in.
type FieldError struct {
	Field string
	Value any
	Err   error
}

func (e *FieldError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("%s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("%s %v: %v", e.Field, e.Value, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

func fieldError(field string, err error, value any) error {
	return &FieldError{Field: field, Value: value, Err: err}
}

// storedError rebuilds a rejection read back from the postings table.
type storedError struct {
	reason, detail string
}

func (e *storedError) Error() string { return e.detail }

func (e *storedError) Unwrap() error {
	if s, ok := reasons[e.reason]; ok {
		return s
	}
	return ErrInvalid
}
