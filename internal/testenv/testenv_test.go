package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/paystream/paystream/schemas/catalog"
)

func TestMain(m *testing.M) { Main(m) }

func TestParallelTestsGetIsolatedDatabases(t *testing.T) {
	names := make(chan string, 2)
	t.Run("group", func(t *testing.T) {
		for _, who := range []string{"alice", "bob"} {
			t.Run(who, func(t *testing.T) {
				t.Parallel()
				db := Postgres(t)
				names <- db.Name
				ctx := context.Background()
				if _, err := db.Pool.Exec(ctx, "CREATE TABLE probe (who text); INSERT INTO probe VALUES ('"+who+"')"); err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond) // let the other test write too
				var rows []string
				r, err := db.Pool.Query(ctx, "SELECT who FROM probe")
				if err != nil {
					t.Fatal(err)
				}
				for r.Next() {
					var w string
					_ = r.Scan(&w)
					rows = append(rows, w)
				}
				if len(rows) != 1 || rows[0] != who {
					t.Errorf("probe rows %v, want only %s", rows, who)
				}
				var n int
				if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM currencies WHERE code = 'USD'").Scan(&n); err != nil || n != 1 {
					t.Errorf("database is not migrated: USD rows %d, %v", n, err)
				}
			})
		}
	})
	close(names)
	a, b := <-names, <-names
	if a == b {
		t.Errorf("both tests got database %s", a)
	}
}

func TestKafkaHasCatalogTopicsAndIsolatedClusters(t *testing.T) {
	ctx := context.Background()
	k1 := NewKafka(t, Partitions(3))
	k2 := NewKafka(t, Partitions(3))
	if k1.Brokers[0] == k2.Brokers[0] {
		t.Fatalf("two tests share broker %s", k1.Brokers[0])
	}
	details, err := kadm.NewClient(k1.Client(t)).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range catalog.Names() {
		d, ok := details[name]
		if !ok {
			t.Errorf("topic %s missing", name)
			continue
		}
		if len(d.Partitions) != 3 {
			t.Errorf("topic %s has %d partitions, want 3", name, len(d.Partitions))
		}
	}

	topic := string(catalog.PaymentsRequested)
	p := k1.Client(t)
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("w1"), Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	offsets, err := kadm.NewClient(k2.Client(t)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	offsets.Each(func(o kadm.ListedOffset) {
		if o.Offset != 0 {
			t.Errorf("second cluster sees a record on %s/%d", o.Topic, o.Partition)
		}
	})
}

// The child half of TestServerIsGoneAfterBinaryExits: it starts the server, prints where
// it runs, and either returns (so Main cleans up) or waits to be killed.
func TestChildServer(t *testing.T) {
	mode := os.Getenv("PAYSTREAM_TESTENV_CHILD")
	if mode == "" {
		t.Skip("runs only as the child of TestServerIsGoneAfterBinaryExits")
	}
	db := Postgres(t)
	var dir string
	if err := db.Pool.QueryRow(context.Background(), "SHOW data_directory").Scan(&dir); err != nil {
		t.Fatal(err)
	}
	pidLine, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("SERVER %s %s\n", strings.SplitN(string(pidLine), "\n", 2)[0], dir)
	if mode == "wait" {
		time.Sleep(time.Minute)
	}
}

func TestServerIsGoneAfterBinaryExits(t *testing.T) {
	if os.Getenv(EnvDatabaseURL) != "" || os.Getenv(EnvContainers) == "1" {
		t.Skip("checks the private server, which is not used with " + EnvDatabaseURL + " or containers")
	}
	for _, mode := range []string{"return", "wait"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildServer$", "-test.v")
			cmd.Env = append(os.Environ(), "PAYSTREAM_TESTENV_CHILD="+mode)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var pid int
			var dir string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "SERVER" {
					pid, _ = strconv.Atoi(f[1])
					dir = f[2]
					break
				}
			}
			if pid == 0 {
				_ = cmd.Process.Kill()
				t.Fatal("child printed no SERVER line")
			}
			if mode == "wait" {
				// kill -9 gives the child no chance to clean up; the server must still go.
				_ = cmd.Process.Kill()
			}
			go func() {
				for sc.Scan() {
				}
			}()
			_ = cmd.Wait()
			deadline := time.Now().Add(15 * time.Second)
			for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("postmaster %d still running after the test binary exited (%v)", pid, err)
			}
			_, err = os.Stat(dir)
			if mode == "return" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("server folder %s left behind: %v", dir, err)
			}
			if mode == "wait" && strings.Contains(filepath.Base(dir), "paystream-testpg-") {
				os.RemoveAll(dir) // the killed child could not remove its own folder
			}
		})
	}
}
