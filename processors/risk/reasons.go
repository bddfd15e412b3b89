package risk

// Reason codes of risk decisions; stable, documented in the README, never free text.
const (
	ReasonVelocity       = "velocity_limit_exceeded" // too many payments in a window
	ReasonTurnover       = "turnover_limit_exceeded" // too much paid in a window
	ReasonWatchListed    = "watch_listed"            // a watch-listed user pays or is paid (entries may name their own code)
	ReasonUnusualAmount  = "unusual_amount"          // far above the wallet's running average
	ReasonInvalidRecord  = "invalid_record"          // a field validation guarantees is missing or malformed
	ReasonWalletNotFound = "wallet_not_found"        // the screened wallet vanished after validation
	ReasonUnderReview    = "under_review"            // the pending outcome of a held payment
	ReasonApproved       = "review_approved"         // added by an operator's approval
	ReasonRejected       = "review_rejected"         // an operator's rejection without its own code
)

// Decisions recorded in schemas.Risk.Decision; Action is also what a rule asks for.
const (
	DecisionApprove = "approve"
	DecisionReview  = "review"
	DecisionReject  = "reject"
)
