package devserver

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"syscall"
	"time"

	_ "github.com/lib/pq" // the "postgres" driver, to create databases
)

// Postgres is a throwaway PostgreSQL cluster in a temporary directory, on loopback.
type Postgres struct {
	Port int

	dir    string
	binDir string
	runAs  *user.User // initdb refuses root, so as root the server runs as this user
	// postmaster is the server process, started by us (not daemonised by pg_ctl) so that it
	// carries Pdeathsig: a test binary killed by its timeout takes the cluster with it.
	postmaster *exec.Cmd
	exited     chan struct{}
}

// PostgresBinDir finds the server binaries: $PG_BINDIR, else the newest
// /usr/lib/postgresql/*/bin.
func PostgresBinDir() (string, error) {
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		return dir, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) < pgMajor(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New("PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BINDIR)")
}

var pgVersionDir = regexp.MustCompile(`postgresql/(\d+)/`)

func pgMajor(dir string) int {
	m := pgVersionDir.FindStringSubmatch(dir)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// StartPostgres initialises and starts a cluster with durability off (test data only).
func StartPostgres(ctx context.Context) (*Postgres, error) {
	binDir, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	// Not t.TempDir: its parents are 0700 and the postgres user could not reach the data.
	dir, err := os.MkdirTemp("", "causeway-pg-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	pg := &Postgres{Port: port, dir: dir, binDir: binDir}
	if os.Geteuid() == 0 {
		if pg.runAs, err = user.Lookup("postgres"); err != nil {
			if pg.runAs, err = user.Lookup("nobody"); err != nil {
				return nil, errors.New("running as root and there is no postgres or nobody user to run PostgreSQL as")
			}
		}
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return nil, err
	}
	if err := pg.chown(data, dir); err != nil {
		return nil, err
	}
	if out, err := pg.run(ctx, "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"); err != nil {
		pg.cleanup()
		return nil, fmt.Errorf("initdb failed: %w\n%s", err, out)
	}
	if err := pg.startPostmaster(data); err != nil {
		pg.cleanup()
		return nil, err
	}
	if err := pg.waitReady(ctx, 60*time.Second); err != nil {
		logTail := tail(pg.logPath(), 20)
		_ = pg.Stop()
		return nil, fmt.Errorf("PostgreSQL did not start: %w\n%s", err, logTail)
	}
	return pg, nil
}

func (pg *Postgres) logPath() string { return filepath.Join(pg.dir, "postgres.log") }

// startPostmaster runs the server in the foreground of its own pinned thread (StartPinned).
func (pg *Postgres) startPostmaster(data string) error {
	logFile, err := os.OpenFile(pg.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("failed to open the PostgreSQL log: %w", err)
	}
	cmd := exec.Command(filepath.Join(pg.binDir, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(pg.Port), "-k", pg.dir,
		"-c", "max_connections=200", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	cmd.Dir = pg.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Go sets the parent-death signal after switching to runAs, so it survives the switch.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true, Credential: pg.credential()}
	done, err := StartPinned(cmd)
	if err != nil {
		logFile.Close()
		return fmt.Errorf("failed to start PostgreSQL: %w", err)
	}
	pg.postmaster, pg.exited = cmd, make(chan struct{})
	exited := pg.exited
	go func() { // ends with the process
		<-done
		logFile.Close()
		close(exited)
	}()
	return nil
}

// waitReady waits until the server accepts connections.
func (pg *Postgres) waitReady(ctx context.Context, timeout time.Duration) error {
	db, err := sql.Open("postgres", pg.URI("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	return waitServing(ctx, pg.exited, timeout, 100*time.Millisecond, db.PingContext)
}

// credential is who the server runs as: nil for ourselves, runAs as root.
func (pg *Postgres) credential() *syscall.Credential {
	if pg.runAs == nil {
		return nil
	}
	uid, _ := strconv.Atoi(pg.runAs.Uid)
	gid, _ := strconv.Atoi(pg.runAs.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

func (pg *Postgres) chown(paths ...string) error {
	if pg.runAs == nil {
		return nil
	}
	uid, _ := strconv.Atoi(pg.runAs.Uid)
	gid, _ := strconv.Atoi(pg.runAs.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			return fmt.Errorf("failed to hand %s to %s: %w", p, pg.runAs.Username, err)
		}
	}
	return nil
}

func (pg *Postgres) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(pg.binDir, tool), args...)
	if cred := pg.credential(); cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = pg.dir
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// URI is the connection URI of database name.
func (pg *Postgres) URI(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.Port, name)
}

var dbNamePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// CreateDatabase creates an empty database and returns its URI.
func (pg *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	if !dbNamePattern.MatchString(name) {
		return "", fmt.Errorf("%q is not a plain database name", name)
	}
	db, err := sql.Open("postgres", pg.URI("postgres"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("failed to create database %s: %w", name, err)
	}
	return pg.URI(name), nil
}

// Stop shuts the cluster down at once (SIGQUIT: immediate shutdown; the data is thrown away
// anyway), SIGKILL after 10 s, and deletes its directory.
func (pg *Postgres) Stop() error {
	defer pg.cleanup()
	if pg.postmaster == nil {
		return nil
	}
	if err := pg.postmaster.Process.Signal(syscall.SIGQUIT); err != nil {
		select {
		case <-pg.exited: // already gone
			return nil
		default:
			return fmt.Errorf("failed to stop PostgreSQL: %w", err)
		}
	}
	select {
	case <-pg.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pg.postmaster.Process.Pid, syscall.SIGKILL)
		<-pg.exited
	}
	return nil
}

func (pg *Postgres) cleanup() { _ = os.RemoveAll(pg.dir) }
