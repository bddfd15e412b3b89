// Package validation is the first stage of the payment chain: it checks a requested
// payment against the ledger's wallets, users and accounts and against per-transaction
// limits by KYC level, records its decision on the payment and forwards it to
// payments.validated, or ends it with a rejection outcome carrying a reason code.
//
// It reads ledger tables through package ledger and never writes them; its own rules live
// in validation_settings and validation_kyc_limits, cached and reloaded every few seconds.
// It keeps no per-wallet state: limits over time are the risk stage's.
package validation
