// Package fee is the fee stage: it prices each payment from fee definitions kept in
// PostgreSQL (table fee_definitions), records the fee lines on the payment and forwards it
// to payments.priced. The same pure Compute prices the preview API.
//
// It owns the fee_definitions table and never writes ledger tables: the posting stage
// turns the fee lines into transfers.
package fee
