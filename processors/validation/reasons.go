package validation

// Reason codes of rejections; stable, documented in the README, never free text.
const (
	ReasonInvalidRecord        = "invalid_record"        // a field the ingress guarantees is missing or malformed
	ReasonInvalidWalletRef     = "invalid_wallet_ref"    // a wallet field is not a wal_ reference
	ReasonMissingWallet        = "missing_wallet"        // the type needs a wallet the record lacks
	ReasonUnsupportedType      = "unsupported_type"      // not one of the payment types
	ReasonUnsupportedOperation = "unsupported_operation" // not capture, void, adjust or refund
	ReasonMissingTarget        = "missing_target"        // an operation without its target payment
	ReasonUnknownCurrency      = "unknown_currency"      // the ledger does not know the currency
	ReasonInvalidAmount        = "invalid_amount"        // not positive, or more fraction digits than the currency has
	ReasonSameWallet           = "same_wallet"           // payer and payee are the same wallet
	ReasonWalletNotFound       = "wallet_not_found"
	ReasonWalletFrozen         = "wallet_frozen"
	ReasonWalletClosed         = "wallet_closed"
	ReasonUserNotActive        = "user_not_active"   // the wallet's user is suspended or closed
	ReasonAccountNotFound      = "account_not_found" // no main account in the payment's currency
	ReasonAccountFrozen        = "account_frozen"
	ReasonAccountClosed        = "account_closed"
	ReasonNotAMerchant         = "not_a_merchant"     // the payee of a merchant payment is not a merchant
	ReasonTypeNotPermitted     = "type_not_permitted" // the payer's KYC level may not make this type
	ReasonBelowMinimum         = "below_minimum"
	ReasonKYCLimitExceeded     = "kyc_limit_exceeded"
)

// Decision results recorded in schemas.Validation.Result.
const (
	Accepted = "accepted"
	Rejected = "rejected"
)
