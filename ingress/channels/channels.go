// Package channels keeps the API channels of the ingress: their key ids, sealed HMAC
// secrets, scopes and rate limits. A secret is shown once, at creation; afterwards it only
// leaves the database sealed, and it never reaches a log.
package channels

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Scope is a permission a channel holds.
type Scope string

// The scopes of the API.
const (
	WalletsRead   Scope = "wallets:read"
	WalletsWrite  Scope = "wallets:write"
	PaymentsRead  Scope = "payments:read"
	PaymentsWrite Scope = "payments:write"
	WebhooksWrite Scope = "webhooks:write"
)

// AllScopes lists every scope.
var AllScopes = []Scope{WalletsRead, WalletsWrite, PaymentsRead, PaymentsWrite, WebhooksWrite}

// DefaultRateLimit is a channel's requests per second unless set at creation.
const DefaultRateLimit = 1000

// Errors.
var (
	ErrUnknown      = errors.New("unknown channel key")
	ErrRevoked      = errors.New("channel key revoked")
	ErrBadScope     = errors.New("unknown scope")
	ErrBadMasterKey = errors.New("PAYSTREAM_MASTER_KEY must be 32 bytes, base64 or hex encoded")
)

// Channel is one API client. Secret is set only by Create and Lookup.
type Channel struct {
	KeyID     string     `json:"key_id"`
	Name      string     `json:"name"`
	Scopes    []Scope    `json:"scopes"`
	RateLimit int        `json:"rate_limit"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Secret    string     `json:"-"`
}

// Has reports whether the channel holds scope s.
func (c Channel) Has(s Scope) bool { return slices.Contains(c.Scopes, s) }

// ParseScopes parses a comma-separated scope list; "all" means every scope.
func ParseScopes(s string) ([]Scope, error) {
	if strings.TrimSpace(s) == "all" {
		return slices.Clone(AllScopes), nil
	}
	var out []Scope
	for _, part := range strings.Split(s, ",") {
		sc := Scope(strings.TrimSpace(part))
		if !slices.Contains(AllScopes, sc) {
			return nil, fmt.Errorf("%w %q (want some of %v)", ErrBadScope, sc, AllScopes)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// ParseMasterKey decodes a 32-byte key given as base64 (standard or URL) or hex.
func ParseMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, dec := range []func(string) ([]byte, error){
		hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	} {
		if k, err := dec(s); err == nil && len(k) == 32 {
			return k, nil
		}
	}
	return nil, ErrBadMasterKey
}

// NewMasterKey returns a fresh key in the form ParseMasterKey reads.
func NewMasterKey() string {
	return base64.StdEncoding.EncodeToString(randomBytes(32))
}

// Store reads and writes channels. Lookups are cached for cacheTTL so a signed request
// costs no database round trip; a revocation through this Store applies at once, one
// through another process within cacheTTL.
type Store struct {
	pool *pgxpool.Pool
	aead cipher.AEAD

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	ch  Channel
	err error
	at  time.Time
}

const cacheTTL = 5 * time.Second

// NewStore returns a store sealing secrets with masterKey (32 bytes).
func NewStore(pool *pgxpool.Pool, masterKey []byte) (*Store, error) {
	if len(masterKey) != 32 {
		return nil, ErrBadMasterKey
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Store{pool: pool, aead: aead, cache: map[string]cached{}}, nil
}

// Create makes a channel and returns it with its secret, the only time the secret is shown.
func (s *Store) Create(ctx context.Context, name string, scopes []Scope, rateLimit int) (Channel, error) {
	if strings.TrimSpace(name) == "" {
		return Channel{}, errors.New("channel name must not be empty")
	}
	if len(scopes) == 0 {
		return Channel{}, fmt.Errorf("%w: a channel needs at least one scope", ErrBadScope)
	}
	if rateLimit <= 0 {
		rateLimit = DefaultRateLimit
	}
	ch := Channel{
		KeyID:     "ck_" + hex.EncodeToString(randomBytes(12)),
		Name:      name,
		Scopes:    scopes,
		RateLimit: rateLimit,
		Secret:    "sk_" + base64.RawURLEncoding.EncodeToString(randomBytes(32)),
	}
	nonce := randomBytes(s.aead.NonceSize())
	seal := s.aead.Seal(nonce, nonce, []byte(ch.Secret), []byte(ch.KeyID))
	err := s.pool.QueryRow(ctx,
		`INSERT INTO channels (key_id, name, secret_seal, scopes, rate_limit) VALUES ($1, $2, $3, $4, $5)
		 RETURNING created_at`,
		ch.KeyID, ch.Name, seal, scopeStrings(scopes), rateLimit).Scan(&ch.CreatedAt)
	if err != nil {
		return Channel{}, fmt.Errorf("creating channel: %w", err)
	}
	return ch, nil
}

// List returns every channel, without secrets, oldest first.
func (s *Store) List(ctx context.Context) ([]Channel, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT key_id, name, scopes, rate_limit, created_at, revoked_at FROM channels ORDER BY created_at, key_id`)
	if err != nil {
		return nil, fmt.Errorf("listing channels: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Channel, error) {
		var c Channel
		var scopes []string
		err := r.Scan(&c.KeyID, &c.Name, &scopes, &c.RateLimit, &c.CreatedAt, &c.RevokedAt)
		c.Scopes = toScopes(scopes)
		return c, err
	})
}

// Revoke stops a channel's key from authenticating. Revoking twice is not an error.
func (s *Store) Revoke(ctx context.Context, keyID string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE channels SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = $1`, keyID)
	if err != nil {
		return fmt.Errorf("revoking channel: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrUnknown
	}
	s.mu.Lock()
	delete(s.cache, keyID)
	s.mu.Unlock()
	return nil
}

// Lookup returns a channel with its secret, or ErrUnknown or ErrRevoked.
func (s *Store) Lookup(ctx context.Context, keyID string) (Channel, error) {
	s.mu.Lock()
	c, ok := s.cache[keyID]
	s.mu.Unlock()
	if ok && time.Since(c.at) < cacheTTL {
		return c.ch, c.err
	}
	ch, err := s.load(ctx, keyID)
	if err != nil && !errors.Is(err, ErrUnknown) && !errors.Is(err, ErrRevoked) {
		return Channel{}, err // a database error is not cached
	}
	s.mu.Lock()
	if len(s.cache) > 100_000 { // unknown keys must not grow the cache without bound
		clear(s.cache)
	}
	s.cache[keyID] = cached{ch: ch, err: err, at: time.Now()}
	s.mu.Unlock()
	return ch, err
}

func (s *Store) load(ctx context.Context, keyID string) (Channel, error) {
	var c Channel
	var scopes []string
	var seal []byte
	err := s.pool.QueryRow(ctx,
		`SELECT key_id, name, secret_seal, scopes, rate_limit, created_at, revoked_at FROM channels WHERE key_id = $1`,
		keyID).Scan(&c.KeyID, &c.Name, &seal, &scopes, &c.RateLimit, &c.CreatedAt, &c.RevokedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Channel{}, ErrUnknown
	}
	if err != nil {
		return Channel{}, fmt.Errorf("looking up channel: %w", err)
	}
	if c.RevokedAt != nil {
		return Channel{}, ErrRevoked
	}
	n := s.aead.NonceSize()
	if len(seal) < n {
		return Channel{}, errors.New("channel secret seal is corrupt")
	}
	secret, err := s.aead.Open(nil, seal[:n], seal[n:], []byte(c.KeyID))
	if err != nil {
		return Channel{}, errors.New("cannot unseal the channel secret: wrong PAYSTREAM_MASTER_KEY?")
	}
	c.Secret = string(secret)
	c.Scopes = toScopes(scopes)
	return c, nil
}

func scopeStrings(sc []Scope) []string {
	out := make([]string, len(sc))
	for i, s := range sc {
		out[i] = string(s)
	}
	return out
}

func toScopes(ss []string) []Scope {
	out := make([]Scope, len(ss))
	for i, s := range ss {
		out[i] = Scope(s)
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return b
}
