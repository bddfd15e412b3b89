package ledger

import (
	"bytes"
	"context"
	"math"
	"slices"
	"testing"

	"github.com/paystream/paystream/internal/testenv"
)

func TestArrayLiterals(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		u    int64
		exp  int32
		want string
	}{
		{1234, 2, "12.34"}, {-5, 2, "-0.05"}, {0, 2, "0.00"}, {700, 2, "7.00"}, {42, 0, "42"}, {-42, 0, "-42"},
		{1, 8, "0.00000001"}, {math.MinInt64, 3, "-9223372036854775.808"}, {math.MaxInt64, 0, "9223372036854775807"},
	} {
		if got := string(appendUnits(nil, c.u, c.exp)); got != c.want {
			t.Errorf("appendUnits(%d, %d) = %s, want %s", c.u, c.exp, got, c.want)
		}
	}
	if got := numericArray([]int64{1234, -1}, func(i int) int32 { return int32(2 - 2*i) }); got != "{12.34,-1}" {
		t.Errorf("numericArray: %s", got)
	}
	if got := intArray([]int16{3, -1}); got != "{3,-1}" {
		t.Errorf("intArray: %s", got)
	}
	if got := textArray([]string{`a"b\c`, "", "NULL", "x,y {z}"}); got != `{"a\"b\\c","","NULL","x,y {z}"}` {
		t.Errorf("textArray: %s", got)
	}
	if got := byteaArray([][]byte{{0x0a, 0xff}, {}}); got != `{"\\x0aff","\\x"}` {
		t.Errorf("byteaArray: %s", got)
	}
}

// The literals read back as the values they render, whatever the text holds.
func TestArrayLiteralsRoundTrip(t *testing.T) {
	t.Parallel()
	db := testenv.Postgres(t)
	ctx := context.Background()
	texts := []string{`a"b\c`, "", "NULL", "x,y {z}", " pad ", "ünï\tcode", `\\"`}
	var gotTexts []string
	if err := db.Pool.QueryRow(ctx, `SELECT $1::text[]`, textArray(texts)).Scan(&gotTexts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotTexts, texts) {
		t.Fatalf("text[] %q, want %q", gotTexts, texts)
	}
	blobs := [][]byte{{0, 1, 0xfe}, {}, []byte(`"\`)}
	var gotBlobs [][]byte
	if err := db.Pool.QueryRow(ctx, `SELECT $1::bytea[]`, byteaArray(blobs)).Scan(&gotBlobs); err != nil {
		t.Fatal(err)
	}
	for i := range blobs {
		if !bytes.Equal(gotBlobs[i], blobs[i]) {
			t.Fatalf("bytea[] %d: %x, want %x", i, gotBlobs[i], blobs[i])
		}
	}
	// Each literal equals units * currencies.unit, scale included.
	units := []int64{1234, -5, 0, 700, 42, math.MaxInt64, math.MinInt64 + 1}
	exps := []int32{2, 2, 2, 3, 0, 8, 0}
	var same bool
	if err := db.Pool.QueryRow(ctx, `SELECT bool_and(l::text = (u * round(1::numeric / (10::numeric ^ e), e))::text)
		FROM unnest($1::numeric[], $2::bigint[], $3::int[]) x(l, u, e)`,
		numericArray(units, func(i int) int32 { return exps[i] }), intArray(units), exps).Scan(&same); err != nil || !same {
		t.Fatalf("numeric literals differ from units * unit: %v", err)
	}
}
