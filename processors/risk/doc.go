// Package risk is the second stage of the payment chain: it screens validated payments
// against per-wallet velocity and turnover limits over rolling windows, a watch list of
// users and an unusual-amount rule, records its decision (approve, review or reject, with
// reason codes and a 0–1000 score) on the payment, and forwards approved payments to
// payments.screened, holds reviewed ones for an operator (Reviews, whose approvals go to
// payments.approved) and ends rejected ones with an outcome.
//
// Per-wallet counters are runner state (restored from the changelog, written in the same
// Kafka transaction as the outputs), never a database table, and windows run on the
// payments' creation times, so a replay decides the same. Rules live in risk_limits,
// risk_watch_list and risk_settings, cached and reloaded every few seconds; the stage
// writes only risk_reviews and never a ledger table.
package risk
