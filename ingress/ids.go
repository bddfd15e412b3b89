package ingress

import "github.com/paystream/paystream/ledger"

// The API's ids are the ledger's public references.
var (
	userID        = ledger.UserRef
	walletID      = ledger.WalletRef
	accountID     = ledger.AccountRef
	parseUserID   = ledger.ParseUserRef
	parseWalletID = ledger.ParseWalletRef
)
