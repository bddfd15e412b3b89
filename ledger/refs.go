package ledger

import (
	"strconv"
	"strings"
)

// Public references: the API and the stream name ledger rows by opaque strings, a prefix
// for the kind and the row's number, so a wrong kind of id is refused before any lookup.
const (
	UserRefPrefix    = "usr_"
	WalletRefPrefix  = "wal_"
	AccountRefPrefix = "acc_"
)

// UserRef is the public reference of a user.
func UserRef(id UserID) string { return UserRefPrefix + strconv.FormatInt(int64(id), 10) }

// WalletRef is the public reference of a wallet.
func WalletRef(id WalletID) string { return WalletRefPrefix + strconv.FormatInt(int64(id), 10) }

// AccountRef is the public reference of an account.
func AccountRef(id AccountID) string { return AccountRefPrefix + strconv.FormatInt(int64(id), 10) }

func parseRef(s, prefix string) (int64, bool) {
	n, ok := strings.CutPrefix(s, prefix)
	if !ok || n == "" || n[0] == '0' || len(n) > 18 {
		return 0, false
	}
	v, err := strconv.ParseInt(n, 10, 64)
	return v, err == nil && v > 0
}

// ParseUserRef reads a user reference.
func ParseUserRef(s string) (UserID, bool) {
	n, ok := parseRef(s, UserRefPrefix)
	return UserID(n), ok
}

// ParseWalletRef reads a wallet reference.
func ParseWalletRef(s string) (WalletID, bool) {
	n, ok := parseRef(s, WalletRefPrefix)
	return WalletID(n), ok
}
