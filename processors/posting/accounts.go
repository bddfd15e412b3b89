package posting

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/paystream/paystream/ledger"
)

// accounts resolves and caches account ids: wallet accounts never move, and system
// accounts are opened on first use, so after warm-up a batch costs no lookups.
type accounts struct {
	l  *ledger.Ledger
	mu sync.Mutex
	m  map[string]ledger.AccountID
}

// errNoAccount is a wallet without an account in the payment's currency.
var errNoAccount = errors.New("no such wallet account")

func (a *accounts) wallet(ctx context.Context, ref, currency string) (ledger.AccountID, error) {
	key := "w/" + ref + "/" + currency
	if id, ok := a.get(key); ok {
		return id, nil
	}
	wid, ok := ledger.ParseWalletRef(ref)
	if !ok {
		return 0, fmt.Errorf("%w: %q is not a wallet", errNoAccount, ref)
	}
	acc, err := a.l.WalletAccount(ctx, wid, currency, ledger.Main)
	if errors.Is(err, ledger.ErrNotFound) {
		return 0, fmt.Errorf("%w: %s in %s", errNoAccount, ref, currency)
	}
	if err != nil {
		return 0, err
	}
	a.put(key, acc.ID)
	return acc.ID, nil
}

// hotShards spreads the balance of system accounts every posting touches over rows, so
// partitions do not queue on one row lock.
const hotShards = 16

// system returns a system account, opening it on first use.
func (a *accounts) system(ctx context.Context, subsidiary string, purpose ledger.Purpose, currency, ref string) (ledger.AccountID, error) {
	key := "s/" + subsidiary + "/" + string(purpose) + "/" + currency + "/" + ref
	if id, ok := a.get(key); ok {
		return id, nil
	}
	acc, err := a.l.SystemAccount(ctx, subsidiary, purpose, currency, ref)
	if errors.Is(err, ledger.ErrNotFound) {
		acc, err = a.l.OpenSystemAccount(ctx, subsidiary, purpose, currency, ref, ledger.Rules{Shards: hotShards})
		if err != nil { // another worker may have opened it first
			acc, err = a.l.SystemAccount(ctx, subsidiary, purpose, currency, ref)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("system account %s/%s/%s: %w", subsidiary, purpose, currency, err)
	}
	a.put(key, acc.ID)
	return acc.ID, nil
}

func (a *accounts) get(k string) (ledger.AccountID, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, ok := a.m[k]
	return id, ok
}

func (a *accounts) put(k string, id ledger.AccountID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.m[k] = id
}

// points returns the wallet's loyalty points account, opening it on first use.
func (a *accounts) points(ctx context.Context, ref string) (ledger.AccountID, error) {
	key := "p/" + ref
	if id, ok := a.get(key); ok {
		return id, nil
	}
	wid, ok := ledger.ParseWalletRef(ref)
	if !ok {
		return 0, fmt.Errorf("%w: %q is not a wallet", errNoAccount, ref)
	}
	acc, err := a.l.WalletAccount(ctx, wid, "PTS", ledger.Points)
	if errors.Is(err, ledger.ErrNotFound) {
		acc, err = a.l.OpenWalletAccount(ctx, wid, "PTS", ledger.Points, ledger.WalletRules)
		if err != nil {
			acc, err = a.l.WalletAccount(ctx, wid, "PTS", ledger.Points)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("points account of %s: %w", ref, err)
	}
	a.put(key, acc.ID)
	return acc.ID, nil
}
