package ingress

import (
	"strconv"
	"strings"

	"github.com/paystream/paystream/ledger"
)

// Public ids are opaque strings: a prefix naming the kind and the ledger's number. The
// prefix lets a wrong kind of id be refused before any lookup.
const (
	userPrefix    = "usr_"
	walletPrefix  = "wal_"
	accountPrefix = "acc_"
)

func userID(id ledger.UserID) string       { return userPrefix + strconv.FormatInt(int64(id), 10) }
func walletID(id ledger.WalletID) string   { return walletPrefix + strconv.FormatInt(int64(id), 10) }
func accountID(id ledger.AccountID) string { return accountPrefix + strconv.FormatInt(int64(id), 10) }

func parseID(s, prefix string) (int64, bool) {
	n, ok := strings.CutPrefix(s, prefix)
	if !ok || n == "" || n[0] == '0' || len(n) > 18 {
		return 0, false
	}
	v, err := strconv.ParseInt(n, 10, 64)
	return v, err == nil && v > 0
}

func parseUserID(s string) (ledger.UserID, bool) {
	n, ok := parseID(s, userPrefix)
	return ledger.UserID(n), ok
}

func parseWalletID(s string) (ledger.WalletID, bool) {
	n, ok := parseID(s, walletPrefix)
	return ledger.WalletID(n), ok
}
