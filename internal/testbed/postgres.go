package testbed

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// PostgresBinDir is where Debian's PostgreSQL 15 server binaries live.
const PostgresBinDir = "/usr/lib/postgresql/15/bin"

// StartPostgres initialises a private cluster in dir/pg (as the postgres OS user: initdb refuses root) and
// starts it on 127.0.0.1:15432 with a password-protected superuser and a "keycloak" database.
func StartPostgres(ctx context.Context, dir string) (PostgresInfo, error) {
	in := PostgresInfo{Host: "127.0.0.1", Port: 15432, User: "zb", Password: password(), Database: "keycloak",
		BinDir: PostgresBinDir, DataDir: filepath.Join(dir, "pg", "data")}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		return in, fmt.Errorf("PostgreSQL: OS user postgres missing (install Debian's postgresql): %w", err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	root := filepath.Join(dir, "pg")
	if err := fresh(root); err != nil {
		return in, err
	}
	if err := os.Chown(root, uid, gid); err != nil {
		return in, err
	}
	pwfile := filepath.Join(root, "pwfile")
	if err := os.WriteFile(pwfile, []byte(in.Password+"\n"), 0o600); err != nil {
		return in, err
	}
	_ = os.Chown(pwfile, uid, gid)
	initdb, err := startAs("postgres-initdb", root, filepath.Join(in.BinDir, "initdb"), []string{"LC_ALL=C.UTF-8"}, cred,
		"-D", in.DataDir, "-U", in.User, "--pwfile", pwfile, "-A", "scram-sha-256", "-E", "UTF8")
	if err != nil {
		return in, err
	}
	if err := initdb.healthy(ctx, in.DataDir, 2*time.Minute, func(context.Context) error {
		if alive(initdb.pid) {
			return fmt.Errorf("initdb still running")
		}
		if _, err := os.Stat(filepath.Join(in.DataDir, "PG_VERSION")); err != nil {
			return err
		}
		return nil
	}); err != nil {
		return in, err
	}
	_ = os.Remove(pwfile)
	p, err := startAs("postgres", root, filepath.Join(in.BinDir, "postgres"), []string{"LC_ALL=C.UTF-8"}, cred,
		"-D", in.DataDir, "-p", strconv.Itoa(in.Port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+root)
	if err != nil {
		return in, err
	}
	in.PID = p.pid
	env := []string{"PGPASSWORD=" + in.Password}
	conn := []string{"-h", in.Host, "-p", strconv.Itoa(in.Port), "-U", in.User}
	if err := p.healthy(ctx, fmt.Sprintf("%s:%d", in.Host, in.Port), time.Minute, func(ctx context.Context) error {
		_, err := run(ctx, env, filepath.Join(in.BinDir, "pg_isready"), conn...)
		return err
	}); err != nil {
		return in, err
	}
	_, err = run(ctx, env, "/usr/bin/psql", append(conn, "-d", "postgres", "-tAc", "CREATE DATABASE keycloak")...)
	return in, err
}
