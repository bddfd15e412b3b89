package channels

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/paystream/paystream/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newTestStore(t *testing.T) (*Store, *testenv.DB) {
	t.Helper()
	db := testenv.Postgres(t)
	key, _ := ParseMasterKey(NewMasterKey())
	s, err := NewStore(db.Pool, key)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func TestCreateLookupRevoke(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db := newTestStore(t)
	ch, err := s.Create(ctx, "shop", []Scope{PaymentsWrite, PaymentsRead}, 50)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ch.KeyID, "ck_") || !strings.HasPrefix(ch.Secret, "sk_") || len(ch.Secret) < 40 {
		t.Errorf("key %q secret length %d", ch.KeyID, len(ch.Secret))
	}
	var sealed []byte
	if err := db.Pool.QueryRow(ctx, "SELECT secret_seal FROM channels WHERE key_id = $1", ch.KeyID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), ch.Secret) {
		t.Error("the secret is stored in clear")
	}

	got, err := s.Lookup(ctx, ch.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Secret != ch.Secret || !got.Has(PaymentsWrite) || got.Has(WalletsWrite) || got.RateLimit != 50 {
		t.Errorf("lookup returned %+v", got)
	}
	if _, err := s.Lookup(ctx, "ck_nope"); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown key: %v", err)
	}

	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].Secret != "" {
		t.Errorf("list: %+v, %v; want one channel without its secret", list, err)
	}

	if err := s.Revoke(ctx, ch.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, ch.KeyID); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked key looked up with %v", err)
	}
	if err := s.Revoke(ctx, "ck_nope"); !errors.Is(err, ErrUnknown) {
		t.Errorf("revoking an unknown key: %v", err)
	}
}

func TestWrongMasterKeyCannotUnseal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db := newTestStore(t)
	ch, err := s.Create(ctx, "app", AllScopes, 0)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ParseMasterKey(NewMasterKey())
	s2, _ := NewStore(db.Pool, other)
	_, err = s2.Lookup(ctx, ch.KeyID)
	if err == nil || !strings.Contains(err.Error(), "PAYSTREAM_MASTER_KEY") {
		t.Errorf("lookup with another master key: %v", err)
	}
}

func TestParseScopes(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"all", len(AllScopes), false},
		{"payments:write", 1, false},
		{"payments:write, payments:read,payments:write", 2, false},
		{"payments:delete", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseScopes(tt.in)
		if (err != nil) != tt.wantErr || len(got) != tt.want {
			t.Errorf("ParseScopes(%q) = %v, %v", tt.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrBadScope) {
			t.Errorf("ParseScopes(%q) error %v does not wrap ErrBadScope", tt.in, err)
		}
	}
}

func TestParseMasterKey(t *testing.T) {
	good := NewMasterKey()
	tests := []struct {
		in string
		ok bool
	}{
		{good, true},
		{strings.Repeat("ab", 32), true},
		{strings.Repeat("ab", 31), false},
		{"short", false},
		{"", false},
	}
	for _, tt := range tests {
		_, err := ParseMasterKey(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseMasterKey(%q): %v", tt.in, err)
		}
	}
}
