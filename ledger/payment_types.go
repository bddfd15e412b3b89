package ledger

import "github.com/shopspring/decimal"

// The postings of every payment type of DESIGN.md. Each builder returns the linked
// transfers the posting stage hands to Post/PostBatch; nothing here touches the database.
// Balances are credits minus debits, so "Dr wallet" lowers a wallet's balance.
// Holds (reserve/capture/void for merchants, refunds against a capture, cancellation)
// are operations of their own, in hold.go.

// Fee is what the payer is charged on top of a payment, and where it goes. A zero
// Amount adds no transfers; VAT is on the fee, already rounded by the fee stage.
type Fee struct {
	Payer      AccountID // who pays it; the payer of the payment when zero
	Amount     decimal.Decimal
	VAT        decimal.Decimal
	Revenue    AccountID // fee revenue of the subsidiary
	VATPayable AccountID
}

func (f Fee) transfers(payer AccountID, currency string) []Transfer {
	if f.Payer != 0 {
		payer = f.Payer
	}
	var ts []Transfer
	if f.Amount.IsPositive() {
		ts = append(ts, Transfer{Code: CodeFee, Debit: payer, Credit: f.Revenue, Amount: f.Amount, Currency: currency})
	}
	if f.VAT.IsPositive() {
		ts = append(ts, Transfer{Code: CodeVAT, Debit: payer, Credit: f.VATPayable, Amount: f.VAT, Currency: currency})
	}
	return ts
}

func posting(id string, principal Transfer, fee Fee, extra ...Transfer) Posting {
	ts := append([]Transfer{principal}, fee.transfers(principal.Debit, principal.Currency)...)
	return Posting{PaymentID: id, Transfers: append(ts, extra...)}
}

// TopUp from a linked bank account or card: the connector's clearing account owes the
// money until the PSP settles (see Settlement).
//
//	principal  Dr connector clearing  Cr wallet main
//	fee, vat   Dr wallet main         Cr fee revenue, VAT payable
func TopUp(id string, clearing, wallet AccountID, amount decimal.Decimal, currency string, fee Fee) Posting {
	return posting(id, Transfer{Code: CodePrincipal, Debit: clearing, Credit: wallet, Amount: amount, Currency: currency}, withPayer(fee, wallet))
}

// Withdrawal to a bank account: the money is in flight on the connector until the bank
// confirms (see Settlement).
//
//	principal  Dr wallet main  Cr connector clearing
//	fee, vat   Dr wallet main  Cr fee revenue, VAT payable
func Withdrawal(id string, wallet, clearing AccountID, amount decimal.Decimal, currency string, fee Fee) Posting {
	return posting(id, Transfer{Code: CodePrincipal, Debit: wallet, Credit: clearing, Amount: amount, Currency: currency}, fee)
}

// Settlement moves funds between the safeguarding bank and a connector's clearing account
// when the counterparty settles: Dr safeguarding Cr clearing for money received (top-ups),
// Dr clearing Cr safeguarding for money paid out (withdrawals, payouts, bills).
//
//	settlement  Dr debit  Cr credit
func Settlement(id string, debit, credit AccountID, amount decimal.Decimal, currency string) Posting {
	return Posting{PaymentID: id, Transfers: []Transfer{{Code: CodeSettlement, Debit: debit, Credit: credit, Amount: amount, Currency: currency}}}
}

// P2P transfer between wallets.
//
//	principal  Dr sender  Cr receiver
//	fee, vat   Dr sender  Cr fee revenue, VAT payable
func P2P(id string, from, to AccountID, amount decimal.Decimal, currency string, fee Fee) Posting {
	return posting(id, Transfer{Code: CodePrincipal, Debit: from, Credit: to, Amount: amount, Currency: currency}, fee)
}

// Discount is a loyalty campaign's part of a merchant payment.
type Discount struct {
	Budget AccountID // the campaign's budget account
	Amount decimal.Decimal
}

// MerchantPayment (QR, hosted checkout, in-app). The merchant pays its fee (MDR) and the
// VAT on it; a campaign discount is paid to the merchant from the campaign budget, so the
// customer pays amount - discount.
//
//	principal  Dr customer         Cr merchant      (amount - discount)
//	discount   Dr campaign budget  Cr merchant
//	fee, vat   Dr merchant         Cr fee revenue, VAT payable
func MerchantPayment(id string, customer, merchant AccountID, amount decimal.Decimal, currency, mcc string, fee Fee, disc Discount) Posting {
	p := Transfer{Code: CodePrincipal, Debit: customer, Credit: merchant, Amount: amount.Sub(disc.Amount), Currency: currency, MCC: mcc}
	var extra []Transfer
	if disc.Amount.IsPositive() {
		extra = append(extra, Transfer{Code: CodeDiscount, Debit: disc.Budget, Credit: merchant, Amount: disc.Amount, Currency: currency})
	}
	return posting(id, p, withPayer(fee, merchant), extra...)
}

// BillPayment to a biller paid through a connector.
//
//	principal  Dr customer  Cr connector clearing (biller)
//	fee, vat   Dr customer  Cr fee revenue, VAT payable
func BillPayment(id string, customer, billerClearing AccountID, amount decimal.Decimal, currency string, fee Fee) Posting {
	return posting(id, Transfer{Code: CodePrincipal, Debit: customer, Credit: billerClearing, Amount: amount, Currency: currency}, fee)
}

// AirtimeTopUp buys mobile airtime from a telco through its connector; the telco's
// commission is earned when it settles.
//
//	principal   Dr customer                Cr connector clearing (telco)
//	commission  Dr connector clearing      Cr fee revenue
//	fee, vat    Dr customer                Cr fee revenue, VAT payable
func AirtimeTopUp(id string, customer, telcoClearing AccountID, amount decimal.Decimal, currency string, commission decimal.Decimal, fee Fee) Posting {
	var extra []Transfer
	if commission.IsPositive() {
		extra = append(extra, Transfer{Code: CodeCommission, Debit: telcoClearing, Credit: fee.Revenue, Amount: commission, Currency: currency})
	}
	return posting(id, Transfer{Code: CodePrincipal, Debit: customer, Credit: telcoClearing, Amount: amount, Currency: currency}, fee, extra...)
}

// RefundPayment returns part of a merchant payment posted without a hold. Cumulative
// limits per capture are enforced by Ledger.Refund, which the posting stage uses when the
// original went through a hold or an authorization.
//
//	refund  Dr merchant  Cr customer
func RefundPayment(id string, merchant, customer AccountID, amount decimal.Decimal, currency string) Posting {
	return Posting{PaymentID: id, Transfers: []Transfer{{Code: CodeRefund, Debit: merchant, Credit: customer, Amount: amount, Currency: currency}}}
}

// AgentCashIn: the customer hands cash to an agent, who sends e-money from its float; the
// platform pays the agent a commission out of fee revenue.
//
//	principal   Dr agent        Cr customer
//	commission  Dr fee revenue  Cr agent
func AgentCashIn(id string, agent, customer AccountID, amount decimal.Decimal, currency string, commission decimal.Decimal, revenue AccountID) Posting {
	var extra []Transfer
	if commission.IsPositive() {
		extra = append(extra, Transfer{Code: CodeCommission, Debit: revenue, Credit: agent, Amount: commission, Currency: currency})
	}
	return posting(id, Transfer{Code: CodePrincipal, Debit: agent, Credit: customer, Amount: amount, Currency: currency}, Fee{}, extra...)
}

// AgentCashOut: the agent hands out cash and receives e-money; the customer pays a fee,
// the agent earns a commission.
//
//	principal   Dr customer     Cr agent
//	fee, vat    Dr customer     Cr fee revenue, VAT payable
//	commission  Dr fee revenue  Cr agent
func AgentCashOut(id string, customer, agent AccountID, amount decimal.Decimal, currency string, fee Fee, commission decimal.Decimal) Posting {
	var extra []Transfer
	if commission.IsPositive() {
		extra = append(extra, Transfer{Code: CodeCommission, Debit: fee.Revenue, Credit: agent, Amount: commission, Currency: currency})
	}
	return posting(id, Transfer{Code: CodePrincipal, Debit: customer, Credit: agent, Amount: amount, Currency: currency}, fee, extra...)
}

// SettlementPayout pays a merchant's balance out to its bank through a connector.
//
//	settlement  Dr merchant  Cr connector clearing (bank)
//	fee, vat    Dr merchant  Cr fee revenue, VAT payable
func SettlementPayout(id string, merchant, bankClearing AccountID, amount decimal.Decimal, currency string, fee Fee) Posting {
	return posting(id, Transfer{Code: CodeSettlement, Debit: merchant, Credit: bankClearing, Amount: amount, Currency: currency}, fee)
}

// FXLeg is one currency side of a cross-currency transfer.
type FXLeg struct {
	Wallet   AccountID
	Position AccountID // the subsidiary's FX position in this currency
	Amount   decimal.Decimal
	Currency string
}

// FXTransfer converts at a rate the caller applied (source and target amounts, each at its
// currency's exponent); the FX position accounts carry the platform's exposure. The fee is
// in the source currency.
//
//	fx        Dr sender (source ccy)       Cr FX position (source ccy)
//	fx        Dr FX position (target ccy)  Cr receiver (target ccy)
//	fee, vat  Dr sender                    Cr fee revenue, VAT payable (source ccy)
func FXTransfer(id string, from, to FXLeg, fee Fee) Posting {
	return posting(id, Transfer{Code: CodeFX, Debit: from.Wallet, Credit: from.Position, Amount: from.Amount, Currency: from.Currency}, fee,
		Transfer{Code: CodeFX, Debit: to.Position, Credit: to.Wallet, Amount: to.Amount, Currency: to.Currency})
}

// InterSubsidiaryPayment pays from a wallet of subsidiary A to a wallet of subsidiary B. Each
// subsidiary's books balance on their own through its inter-subsidiary account with the
// other; the two net to zero (paystream verify checks it).
//
//	principal  Dr payer (A)                Cr inter-subsidiary A→B (in A)
//	principal  Dr inter-subsidiary B→A (in B)  Cr payee (B)
//	fee, vat   Dr payer                    Cr fee revenue, VAT payable of A
func InterSubsidiaryPayment(id string, payer, interAB, interBA, payee AccountID, amount decimal.Decimal, currency string, fee Fee) Posting {
	return posting(id, Transfer{Code: CodePrincipal, Debit: payer, Credit: interAB, Amount: amount, Currency: currency}, fee,
		Transfer{Code: CodePrincipal, Debit: interBA, Credit: payee, Amount: amount, Currency: currency})
}

// Adjustment by an operator, after maker-checker approval in the admin portal: a credit
// (positive) or debit (negative) of a wallet against the subsidiary's adjustment account.
//
//	adjustment  Dr adjustments  Cr wallet   (credit)
//	adjustment  Dr wallet       Cr adjustments (debit)
func Adjustment(id string, wallet, adjustments AccountID, amount decimal.Decimal, currency string) Posting {
	t := Transfer{Code: CodeAdjustment, Debit: adjustments, Credit: wallet, Amount: amount, Currency: currency}
	if amount.IsNegative() {
		t.Debit, t.Credit, t.Amount = wallet, adjustments, amount.Neg()
	}
	return Posting{PaymentID: id, Transfers: []Transfer{t}}
}

// PointsEarning credits loyalty points issued by a campaign.
//
//	points  Dr points liability (PTS)  Cr customer points (PTS)
func PointsEarning(id string, liability, points AccountID, amount decimal.Decimal) Posting {
	return Posting{PaymentID: id, Transfers: []Transfer{{Code: CodePoints, Debit: liability, Credit: points, Amount: amount, Currency: "PTS"}}}
}

// Combination pays a merchant with points, balance and card at once, all-or-nothing.
// Points are redeemed at a value funded by the campaign budget.
type Combination struct {
	Customer, Merchant, CustomerPoints, PointsLiability, Budget, CardClearing AccountID
	Points                                                                    decimal.Decimal // PTS redeemed
	PointsValue, Balance, Card                                                decimal.Decimal // in Currency
	Currency, MCC                                                             string
}

// CombinationPayment:
//
//	points     Dr customer points (PTS)       Cr points liability (PTS)
//	reward     Dr campaign budget             Cr merchant   (points value)
//	principal  Dr customer                    Cr merchant   (balance part)
//	principal  Dr connector clearing (card)   Cr merchant   (card part)
//	fee, vat   Dr merchant                    Cr fee revenue, VAT payable
func CombinationPayment(id string, c Combination, fee Fee) Posting {
	var ts []Transfer
	if c.Points.IsPositive() {
		ts = append(ts,
			Transfer{Code: CodePoints, Debit: c.CustomerPoints, Credit: c.PointsLiability, Amount: c.Points, Currency: "PTS"},
			Transfer{Code: CodeReward, Debit: c.Budget, Credit: c.Merchant, Amount: c.PointsValue, Currency: c.Currency})
	}
	if c.Balance.IsPositive() {
		ts = append(ts, Transfer{Code: CodePrincipal, Debit: c.Customer, Credit: c.Merchant, Amount: c.Balance, Currency: c.Currency, MCC: c.MCC})
	}
	if c.Card.IsPositive() {
		ts = append(ts, Transfer{Code: CodePrincipal, Debit: c.CardClearing, Credit: c.Merchant, Amount: c.Card, Currency: c.Currency})
	}
	return Posting{PaymentID: id, Transfers: append(ts, withPayer(fee, c.Merchant).transfers(c.Merchant, c.Currency)...)}
}

func withPayer(f Fee, payer AccountID) Fee {
	if f.Payer == 0 {
		f.Payer = payer
	}
	return f
}
