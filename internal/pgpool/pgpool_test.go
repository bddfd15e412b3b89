package pgpool_test

import (
	"context"
	"strings"
	"testing"

	"github.com/paystream/paystream/internal/pgpool"
	"github.com/paystream/paystream/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestSessionsPlanWithTheirParameters(t *testing.T) {
	db := testenv.Postgres(t)
	ctx := context.Background()
	for _, tc := range []struct{ url, want string }{
		{db.URL, "force_custom_plan"},
		{withParam(db.URL, "plan_cache_mode=auto"), "auto"},
	} {
		pool, err := pgpool.Open(ctx, tc.url)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := pool.QueryRow(ctx, `SELECT current_setting('plan_cache_mode')`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		pool.Close()
		if got != tc.want {
			t.Errorf("%s: plan_cache_mode = %s, want %s", tc.url, got, tc.want)
		}
	}
}

func withParam(url, param string) string {
	if strings.Contains(url, "?") {
		return url + "&" + param
	}
	return url + "?" + param
}
