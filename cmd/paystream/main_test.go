package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/paystream/paystream/internal/gcsettings"

	"github.com/paystream/paystream/ingress/channels"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/ledger"
)

// TestMain doubles as the paystream binary: with PAYSTREAM_RUN_MAIN=1 the test binary
// runs the command line in its arguments, so tests drive real processes (signals, exit
// codes, leftovers) without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("PAYSTREAM_RUN_MAIN") == "1" {
		gcsettings.Apply() // as main does
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	testenv.Main(m)
}

// runCLI runs the command line in this process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestEverySubcommandHasHelp(t *testing.T) {
	for _, cmd := range []string{"dev", "migrate", "topics", "version", "serve", "channels create", "channels list", "channels revoke", "verify", "run", "call", "rules fees list", "review list"} {
		t.Run(cmd, func(t *testing.T) {
			code, out, _ := runCLI(t, append(strings.Fields(cmd), "--help")...)
			if code != 0 {
				t.Fatalf("%s --help exited %d", cmd, code)
			}
			if !strings.Contains(out, "Usage: paystream "+cmd) {
				t.Errorf("%s --help printed no usage:\n%s", cmd, out)
			}
		})
	}
}

func TestBadConfigurationIsRefusedWithTheSettingNamed(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"version", "--partitions=-1"}, want: "PAYSTREAM_PARTITIONS"},
		{args: []string{"version"}, env: map[string]string{"PAYSTREAM_HTTP_ADDR": "nope"}, want: "PAYSTREAM_HTTP_ADDR"},
		{args: []string{"version"}, env: map[string]string{"PAYSTREAM_DATABASE_URL": "mysql://u:secret@h/db"}, want: "PAYSTREAM_DATABASE_URL"},
		{args: []string{"version", "--kafka-brokers", "a:1,b"}, want: "PAYSTREAM_KAFKA_BROKERS"},
		{args: []string{"version", "--log-format", "xml"}, want: "log-format"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, _, errOut := runCLI(t, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("error %q does not name %s", errOut, tt.want)
			}
			if strings.Contains(errOut, "secret") {
				t.Errorf("error output leaks the password: %q", errOut)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "paystream ") {
		t.Errorf("version: exit %d, output %q", code, out)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	db := testenv.Postgres(t)
	t.Setenv("PAYSTREAM_DATABASE_URL", db.URL)
	for range 2 {
		code, out, errOut := runCLI(t, "migrate")
		if code != 0 {
			t.Fatalf("migrate exited %d: %s", code, errOut)
		}
		if !strings.Contains(out, "up to date") {
			t.Errorf("migrate on a migrated database printed %q", out)
		}
	}
}

func TestChannelsCreateListRevoke(t *testing.T) {
	db := testenv.Postgres(t)
	t.Setenv("PAYSTREAM_DATABASE_URL", db.URL)
	t.Setenv("PAYSTREAM_MASTER_KEY", channels.NewMasterKey())

	code, out, errOut := runCLI(t, "channels", "create", "--name", "shop", "--scopes", "payments:write,payments:read")
	if code != 0 {
		t.Fatalf("create exited %d: %s", code, errOut)
	}
	var created struct {
		KeyID  string `json:"key_id"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.KeyID == "" || created.Secret == "" {
		t.Fatalf("create printed %q (%v), want JSON with key_id and secret", out, err)
	}
	code, out, _ = runCLI(t, "channels", "list")
	if code != 0 || !strings.Contains(out, created.KeyID) || strings.Contains(out, created.Secret) {
		t.Errorf("list: exit %d, output %s; want the key without the secret", code, out)
	}
	if code, _, _ = runCLI(t, "channels", "revoke", created.KeyID); code != 0 {
		t.Errorf("revoke exited %d", code)
	}
	if code, _, _ = runCLI(t, "channels", "revoke", "ck_unknown"); code == 0 {
		t.Error("revoking an unknown key succeeded")
	}
	if code, _, errOut = runCLI(t, "channels", "create", "--name", "x", "--scopes", "payments:steal"); code == 0 || !strings.Contains(errOut, "unknown scope") {
		t.Errorf("bad scope: exit %d, %s", code, errOut)
	}
	t.Setenv("PAYSTREAM_MASTER_KEY", "short")
	if code, _, errOut = runCLI(t, "channels", "list"); code == 0 || !strings.Contains(errOut, "PAYSTREAM_MASTER_KEY") {
		t.Errorf("bad master key: exit %d, %s", code, errOut)
	}
}

func TestVerifyPassesOnAHealthyLedgerAndFailsOnABrokenOne(t *testing.T) {
	db := testenv.Postgres(t)
	t.Setenv("PAYSTREAM_DATABASE_URL", db.URL)
	code, out, errOut := runCLI(t, "verify")
	if code != 0 || !strings.Contains(out, "invariants hold") || strings.Contains(out, "FAIL") {
		t.Fatalf("verify on an empty ledger: exit %d\n%s%s", code, out, errOut)
	}
	// Money created from nothing: a balance row that no transfer explains.
	ctx := context.Background()
	l, err := ledger.New(ctx, db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateSubsidiary(ctx, ledger.Subsidiary{ID: "VN01", Name: "VN", BaseCurrency: "USD"}); err != nil {
		t.Fatal(err)
	}
	u, err := l.CreateUser(ctx, ledger.User{Kind: ledger.Customer, DisplayName: "a"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := l.CreateWallet(ctx, ledger.Wallet{UserID: u.ID, Subsidiary: "VN01"})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := l.OpenWalletAccount(ctx, w.ID, "USD", ledger.Main, ledger.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, "UPDATE account_balances SET credits_posted = credits_posted + 5 WHERE account_id = $1", acc.ID); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "verify", "--full")
	if code == 0 || !strings.Contains(out, "FAIL") {
		t.Errorf("verify on a ledger with money from nothing: exit %d\n%s", code, out)
	}
}
