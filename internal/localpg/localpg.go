// Package localpg runs a private PostgreSQL server from the binaries installed on the
// machine, in a folder of its own, listening only on 127.0.0.1. It serves `paystream dev`
// and the test environment; it never touches a server it did not start.
//
// The server is a child process that receives SIGINT (PostgreSQL's fast shutdown) when the
// process that started it dies, even by kill -9, so no postmaster outlives paystream.
package localpg

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries means no PostgreSQL server binaries were found on the machine.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries (initdb, postgres) found on PATH or under /usr/lib/postgresql/*/bin: " +
	"install them (Debian/Ubuntu: apt-get install postgresql) or set PAYSTREAM_DATABASE_URL to an existing server")

// ErrInUse means another server already runs on the data folder.
var ErrInUse = errors.New("the PostgreSQL data folder is in use by another server (is another paystream running on this folder?)")

// Options configures a server. The zero value is not usable: Dir is required.
type Options struct {
	// Dir is the data folder. An empty or missing folder is initialised with initdb; an
	// initialised one is reused with its data.
	Dir string
	// NoFsync turns fsync and full-page writes off. Only for throwaway test servers: a
	// machine crash can corrupt such a cluster.
	NoFsync bool
	// Port to listen on; 0 picks a free one at every start.
	Port int
	// BinDir holds initdb and postgres; empty means FindBinaries.
	BinDir string
	// StartTimeout bounds initdb plus start-up. Default 60 s.
	StartTimeout time.Duration
}

// Server is a running private PostgreSQL server.
type Server struct {
	dir      string
	port     int
	password string
	proc     *os.Process
	exited   chan struct{} // closed when the postmaster has exited
	waitErr  error
	logPath  string
}

// superuser is the role initdb creates; the password is generated per data folder.
const superuser = "paystream"

const passwordFile = "paystream.password"

// libRoot is where Debian and Ubuntu install the versioned server binaries.
var libRoot = "/usr/lib/postgresql"

// FindBinaries returns the folder holding initdb and postgres: PATH first, then the
// newest /usr/lib/postgresql/<version>/bin.
func FindBinaries() (string, error) {
	if p, err := exec.LookPath("postgres"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(libRoot, "*", "bin"))
	slices.SortFunc(dirs, func(a, b string) int {
		return versionOf(b) - versionOf(a)
	})
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "postgres")) && isExecutable(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Start initialises Dir if needed and starts the server, returning once it accepts
// connections.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("localpg: Options.Dir is required")
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()

	bin := opts.BinDir
	if bin == "" {
		var err error
		if bin, err = FindBinaries(); err != nil {
			return nil, err
		}
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := prepareDir(dir, cred); err != nil {
		return nil, err
	}
	password, err := initIfEmpty(ctx, bin, dir, cred)
	if err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	s := &Server{dir: dir, port: port, password: password, exited: make(chan struct{}),
		logPath: filepath.Join(dir, "paystream-server.log")}
	if err := s.launch(bin, cred, opts.NoFsync); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop(context.Background())
		return nil, err
	}
	return s, nil
}

// serverCredential returns the user to run PostgreSQL as: PostgreSQL refuses to run as
// root, so as root it runs as the postgres user; otherwise as ourselves (nil).
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as the postgres user, which does not exist (it comes with the postgresql package): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func prepareDir(dir string, cred *syscall.Credential) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating PostgreSQL folder: %w", err)
	}
	if cred == nil {
		return nil
	}
	// The postgres user must own the folder and reach it through its parents.
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if filepath.Base(p) == passwordFile {
			return nil
		}
		return os.Lchown(p, int(cred.Uid), int(cred.Gid))
	}); err != nil {
		return fmt.Errorf("giving %s to the postgres user: %w", dir, err)
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("the postgres user cannot enter %s (mode %v): choose a data folder outside it", p, fi.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func initIfEmpty(ctx context.Context, bin, dir string, cred *syscall.Credential) (string, error) {
	pwPath := filepath.Join(dir, passwordFile)
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		pw, err := os.ReadFile(pwPath)
		if err != nil {
			return "", fmt.Errorf("reading the server's password file: %w", err)
		}
		return strings.TrimSpace(string(pw)), nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	if len(entries) > 0 {
		return "", fmt.Errorf("%s is neither empty nor a PostgreSQL data folder", dir)
	}
	password := randomHex(24)
	// initdb reads the password from a file the postgres user can read; it lives only
	// until initdb returns.
	pwTmp, err := os.CreateTemp("", "paystream-pw-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(pwTmp.Name())
	if _, err := pwTmp.WriteString(password + "\n"); err != nil {
		return "", err
	}
	pwTmp.Close()
	if cred != nil {
		if err := os.Chown(pwTmp.Name(), int(cred.Uid), int(cred.Gid)); err != nil {
			return "", err
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", dir, "-U", superuser, "--pwfile", pwTmp.Name(),
		"--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("initdb %s: %w\n%s", dir, err, out.String())
	}
	if err := os.WriteFile(pwPath, []byte(password+"\n"), 0o600); err != nil {
		return "", err
	}
	return password, nil
}

func (s *Server) launch(bin string, cred *syscall.Credential, noFsync bool) error {
	args := []string{"-D", s.dir, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=",
		"-c", "max_connections=200",
		// The payments' tables are keyed by ids derived from channel and key, so every
		// insert lands on a random leaf of their indexes. With 256 MB those indexes left the
		// cache within minutes at 2,500 payments/s: in the eighth minute the inserts into
		// payment_status and payment_outcomes and the stored-postings probe each read about
		// 30,000 blocks back from the kernel (pg_stat_statements); with 1 GB none read more
		// than 10, and backends wrote out a quarter as many dirty buffers themselves. Two
		// alternating pairs of 10-minute runs at 2,500/s: outcome p99 177.3 and 190.0 ms
		// with 256 MB, 153.2 and 151.4 ms with 1 GB. The memory is taken only as it is used.
		"-c", "shared_buffers=1GB",
		// At 2,500 payments/s the default 1 GB of WAL between checkpoints lasted 18 s:
		// checkpoints ran back to back, each followed by full-page images that made the
		// WAL larger still, and the latency of a 10-minute run tripled over a one-minute
		// one. Compressed, and with up to 4 GB between checkpoints, they come minutes apart
		// (the first in the fifth minute at that rate). lz4 rather than the default pglz:
		// the same images for less of the CPU the whole machine is short of.
		"-c", "max_wal_size=4GB",
		"-c", "checkpoint_timeout=10min",
		"-c", "wal_compression=lz4",
		// Autovacuum comes back every minute for the tables that only take inserts (to set
		// their visibility bits), and at 2,500 payments/s it took a core for about 7 s of
		// each minute; the outcome p99 of those seconds passed 150 ms. Sleeping 5 ms rather
		// than 2 ms between its rounds of work spreads the same vacuum over about 16 s.
		// 120-second runs at 2,500/s: p99 146 ms at 2 ms, 86 ms at 5 ms, 90 ms at 10 ms
		// (where the vacuum took half of each minute).
		"-c", "autovacuum_vacuum_cost_delay=5ms",
	}
	if noFsync {
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off")
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	started := make(chan error, 1)
	// Pdeathsig fires when the thread that forked the child exits, so the fork happens on
	// a locked thread that lives exactly as long as the server.
	go func() {
		runtime.LockOSThread()
		cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
		if err := cmd.Start(); err != nil {
			logf.Close()
			started <- fmt.Errorf("starting postgres: %w", err)
			return
		}
		s.proc = cmd.Process
		started <- nil
		s.waitErr = cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	return <-started
}

func (s *Server) waitReady(ctx context.Context) error {
	for {
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-s.exited:
			tail := s.logTail()
			if strings.Contains(tail, "lock file") && strings.Contains(tail, "already exists") {
				return fmt.Errorf("%w: %s", ErrInUse, s.dir)
			}
			return fmt.Errorf("postgres exited during start-up (%v); its log %s ends:\n%s", s.waitErr, s.logPath, tail)
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections in time: %w; log %s ends:\n%s", ctx.Err(), s.logPath, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// URL returns a connection URL for the named database as the superuser.
func (s *Server) URL(database string) string {
	u := url.URL{
		Scheme: "postgres",
		User:   url.UserPassword(superuser, s.password),
		Host:   net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:   "/" + database,
	}
	return u.String() + "?sslmode=disable"
}

// Port returns the port the server listens on.
func (s *Server) Port() int { return s.port }

// Dir returns the data folder.
func (s *Server) Dir() string { return s.dir }

// PID returns the postmaster's process id.
func (s *Server) PID() int { return s.proc.Pid }

// Stop shuts the server down: a fast shutdown (open transactions roll back, a clean
// checkpoint), then an immediate one if that takes longer than ctx allows or 8 s.
func (s *Server) Stop(ctx context.Context) error {
	if s == nil || s.proc == nil {
		return nil
	}
	_ = s.proc.Signal(syscall.SIGINT)
	fast := time.NewTimer(8 * time.Second)
	defer fast.Stop()
	select {
	case <-s.exited:
		return nil
	case <-ctx.Done():
	case <-fast.C:
	}
	_ = s.proc.Signal(syscall.SIGQUIT)
	select {
	case <-s.exited:
		return errors.New("postgres needed an immediate shutdown; it will recover on next start")
	case <-time.After(2 * time.Second):
		_ = syscall.Kill(-s.proc.Pid, syscall.SIGKILL)
		<-s.exited
		return errors.New("postgres had to be killed")
	}
}

// Exited is closed when the server process has ended.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// Ended waits for the server process to end and says how it did. A postmaster that shuts
// down after a failed crash recovery (a full disk) exits with status 0: its log's tail
// (LogTail) names the cause.
func (s *Server) Ended() error {
	<-s.exited
	status := "exit status 0"
	if s.waitErr != nil {
		status = s.waitErr.Error()
	}
	return fmt.Errorf("postgres exited (%s); its log is %s", status, s.logPath)
}

// LogTail returns the last 2,000 bytes of the server's log.
func (s *Server) LogTail() string { return s.logTail() }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
