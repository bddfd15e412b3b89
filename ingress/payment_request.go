package ingress

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/paystream/paystream/ingress/problem"
)

// Payment types a channel can request.
const (
	TypeTopUp           = "topup"
	TypeWithdrawal      = "withdrawal"
	TypeTransfer        = "transfer"
	TypeMerchantPayment = "merchant_payment"
	TypeBillPayment     = "bill_payment"
	TypeAirtimeTopUp    = "airtime_topup"
	TypeRefund          = "refund"
	TypeHold            = "hold"
)

// Money is an amount as the API carries it: a JSON string holding a decimal. A JSON number
// is refused, since clients' JSON libraries turn numbers into binary floats.
type Money string

var errMoneyNotString = errors.New("money must be a JSON string such as \"12.50\", not a number")

// UnmarshalJSON accepts only a string.
func (m *Money) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '"' {
		return errMoneyNotString
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*m = Money(s)
	return nil
}

// PaymentRequest is the body of POST /v1/payments.
type PaymentRequest struct {
	Type                string            `json:"type"`
	Amount              Money             `json:"amount"`
	Currency            string            `json:"currency"`
	SourceWalletID      string            `json:"source_wallet_id,omitempty"`
	DestinationWalletID string            `json:"destination_wallet_id,omitempty"`
	Method              string            `json:"method,omitempty"`
	Reference           string            `json:"reference,omitempty"`
	Description         string            `json:"description,omitempty"`
	Metadata            map[string]string `json:"metadata,omitempty"`
	Biller              string            `json:"biller,omitempty"`
	CustomerRef         string            `json:"customer_ref,omitempty"`
	Phone               string            `json:"phone,omitempty"`
	MCC                 string            `json:"mcc,omitempty"`
	// OriginalPaymentID is the payment a refund returns money of.
	OriginalPaymentID string `json:"original_payment_id,omitempty"`
}

// Limits of free-text fields.
const (
	maxReference   = 128
	maxDescription = 512
	maxMetadata    = 20
	maxMetaLen     = 256
	// maxAmountDigits bounds an amount's digits: far above any real payment, far below what
	// overflows anything downstream.
	maxAmountDigits = 18
)

var (
	walletIDPattern  = regexp.MustCompile(`^wal_[1-9][0-9]{0,18}$`)
	paymentIDPattern = regexp.MustCompile(`^pay_[0-9a-f]{32}$`)
	phonePattern     = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	currencyPattern  = regexp.MustCompile(`^[A-Z]{3}$`)
	mccPattern       = regexp.MustCompile(`^[0-9]{4}$`)
)

// methods by type; the first is the default.
var methods = map[string][]string{
	TypeTopUp:      {"bank", "card"},
	TypeWithdrawal: {"bank"},
}

// fieldRule says which wallet fields a type needs: 'r' required, '-' forbidden.
var walletFields = map[string][2]byte{ // source, destination
	TypeTopUp:           {'-', 'r'},
	TypeWithdrawal:      {'r', '-'},
	TypeTransfer:        {'r', 'r'},
	TypeMerchantPayment: {'r', 'r'},
	TypeBillPayment:     {'r', '-'},
	TypeAirtimeTopUp:    {'r', '-'},
	TypeRefund:          {'r', 'r'},
	TypeHold:            {'r', 'r'},
}

// ParsedPayment is a validated request with its amount as a decimal.
type ParsedPayment struct {
	PaymentRequest
	Value decimal.Decimal
}

// validate checks a payment request; exponent returns the fraction digits a currency
// allows and whether it is known. Every problem found is reported, not just the first.
func (req PaymentRequest) validate(exponent func(string) (int32, bool)) (ParsedPayment, *problem.Problem) {
	var errs []problem.FieldError
	add := func(field, code, msg string) {
		errs = append(errs, problem.FieldError{Field: field, Code: code, Message: msg})
	}
	p := ParsedPayment{PaymentRequest: req}

	rule, knownType := walletFields[req.Type]
	if req.Type == "" {
		add("type", "required", "type is required")
	} else if !knownType {
		add("type", "unknown_type", "type must be one of topup, withdrawal, transfer, merchant_payment, bill_payment, airtime_topup, refund, hold")
	}

	var exp int32
	currencyOK := false
	switch {
	case req.Currency == "":
		add("currency", "required", "currency is required")
	case !currencyPattern.MatchString(req.Currency):
		add("currency", "invalid_currency", "currency must be an ISO 4217 code such as USD")
	default:
		if exp, currencyOK = exponent(req.Currency); !currencyOK {
			add("currency", "unknown_currency", req.Currency+" is not a currency this platform handles")
		}
	}

	if req.Amount == "" {
		add("amount", "required", "amount is required")
	} else if v, err := decimal.NewFromString(string(req.Amount)); err != nil || strings.ContainsAny(string(req.Amount), "eE+ ") || strings.HasPrefix(string(req.Amount), ".") {
		add("amount", "invalid_amount", "amount must be a plain decimal string such as \"12.50\"")
	} else {
		p.Value = v
		switch {
		case !v.IsPositive():
			add("amount", "not_positive", "amount must be greater than zero")
		case len(v.Coefficient().String()) > maxAmountDigits:
			add("amount", "too_large", "amount has too many digits")
		case currencyOK && !v.Equal(v.Truncate(exp)):
			add("amount", "too_many_decimals", req.Currency+" allows "+strconv.Itoa(int(exp))+" fraction digits; amounts are never rounded")
		}
	}

	if knownType {
		checkWallet := func(field, id string, r byte) {
			switch {
			case r == 'r' && id == "":
				add(field, "required", field+" is required for "+req.Type)
			case r == '-' && id != "":
				add(field, "not_allowed", field+" is not part of a "+req.Type)
			case id != "" && !walletIDPattern.MatchString(id):
				add(field, "invalid_id", field+" is not a wallet id")
			}
		}
		checkWallet("source_wallet_id", req.SourceWalletID, rule[0])
		checkWallet("destination_wallet_id", req.DestinationWalletID, rule[1])
		if req.SourceWalletID != "" && req.SourceWalletID == req.DestinationWalletID {
			add("destination_wallet_id", "same_wallet", "source and destination must differ")
		}
		if ms, ok := methods[req.Type]; ok {
			if req.Method == "" {
				p.Method = ms[0]
			} else if !slices.Contains(ms, req.Method) {
				add("method", "unknown_method", "method must be one of "+strings.Join(ms, ", "))
			}
		} else if req.Method != "" {
			add("method", "not_allowed", "method is not part of a "+req.Type)
		}
		requireIf := func(field, value string, needed bool, ok bool, msg string) {
			switch {
			case needed && value == "":
				add(field, "required", field+" is required for "+req.Type)
			case !needed && value != "":
				add(field, "not_allowed", field+" is not part of a "+req.Type)
			case value != "" && !ok:
				add(field, "invalid_"+field, msg)
			}
		}
		requireIf("biller", req.Biller, req.Type == TypeBillPayment, len(req.Biller) <= 64, "biller is at most 64 characters")
		requireIf("customer_ref", req.CustomerRef, req.Type == TypeBillPayment, len(req.CustomerRef) <= 64, "customer_ref is at most 64 characters")
		requireIf("phone", req.Phone, req.Type == TypeAirtimeTopUp, phonePattern.MatchString(req.Phone), "phone must be in E.164 form such as +84901234567")
		requireIf("original_payment_id", req.OriginalPaymentID, req.Type == TypeRefund, paymentIDPattern.MatchString(req.OriginalPaymentID), "original_payment_id is not a payment id")
		if req.MCC != "" && !mccPattern.MatchString(req.MCC) {
			add("mcc", "invalid_mcc", "mcc is a 4-digit merchant category code")
		}
	}

	if len(req.Reference) > maxReference {
		add("reference", "too_long", "reference is at most 128 characters")
	}
	if len(req.Description) > maxDescription {
		add("description", "too_long", "description is at most 512 characters")
	}
	if len(req.Metadata) > maxMetadata {
		add("metadata", "too_many_keys", "metadata holds at most 20 keys")
	}
	for k, v := range req.Metadata {
		if len(k) > 40 || len(v) > maxMetaLen {
			add("metadata", "too_long", "metadata keys are at most 40 and values at most 256 characters")
			break
		}
	}
	if len(errs) > 0 {
		code := "invalid_payment"
		if len(errs) == 1 && errs[0].Field == "amount" {
			code = "invalid_amount"
		}
		return p, problem.New(http.StatusUnprocessableEntity, code, "the payment request is not valid").With(errs...)
	}
	return p, nil
}
