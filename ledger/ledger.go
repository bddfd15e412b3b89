package ledger

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Ledger is the handle the ingress, the posting stage and the batch jobs share. It is safe
// for concurrent use.
type Ledger struct {
	pool       *pgxpool.Pool
	currencies currencies
	// accounts caches what never changes about an account after creation.
	accounts sync.Map // AccountID -> accountMeta
}

// New returns a ledger on a migrated database.
func New(ctx context.Context, pool *pgxpool.Pool) (*Ledger, error) {
	cs, err := loadCurrencies(ctx, pool)
	if err != nil {
		return nil, err
	}
	return &Ledger{pool: pool, currencies: cs}, nil
}

// Currency returns the rules of a currency.
func (l *Ledger) Currency(code string) (Currency, bool) {
	c, ok := l.currencies[code]
	return c, ok
}
