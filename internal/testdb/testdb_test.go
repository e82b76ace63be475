package testdb_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func TestPostgresURLIsolation(t *testing.T) {
	start := time.Now()
	url1 := testdb.PostgresURL(t)
	t.Logf("first PostgresURL (includes server start): %v", time.Since(start))
	start = time.Now()
	url2 := testdb.PostgresURL(t)
	t.Logf("second PostgresURL (one CREATE DATABASE): %v", time.Since(start))
	if url1 == url2 {
		t.Fatalf("PostgresURL returned the same URL twice: %s", url1)
	}
	if !strings.HasPrefix(url1, "postgres://") {
		t.Fatalf("URL %q does not start with postgres://", url1)
	}

	ctx := context.Background()
	db1, db2 := connect(t, url1), connect(t, url2)

	var version string
	if err := db1.QueryRow(ctx, `SELECT version()`).Scan(&version); err != nil {
		t.Fatalf("SELECT version(): %v", err)
	}
	if !strings.HasPrefix(version, "PostgreSQL") {
		t.Fatalf("version() = %q, want PostgreSQL ...", version)
	}
	t.Logf("%s", version)

	if _, err := db1.Exec(ctx, `CREATE TABLE x (id int)`); err != nil {
		t.Fatalf("CREATE TABLE in first database: %v", err)
	}
	var n int
	if err := db1.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'x'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("first database: table x count = %d, err = %v; want 1", n, err)
	}
	if err := db2.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'x'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("second database sees table x: count = %d, err = %v; want 0", n, err)
	}
	if _, err := db2.Exec(ctx, `SELECT * FROM x`); err == nil {
		t.Fatal("SELECT from x in the second database succeeded; databases are not isolated")
	}
}

func TestPostgresURLParallel(t *testing.T) {
	for i := 0; i < 8; i++ {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			conn := connect(t, testdb.PostgresURL(t))
			if _, err := conn.Exec(context.Background(), `CREATE TABLE x (id int)`); err != nil {
				t.Fatalf("CREATE TABLE: %v", err)
			}
		})
	}
}

// BenchmarkPostgresURL measures one CREATE DATABASE (the drops run in the
// cleanup at the end of the benchmark).
func BenchmarkPostgresURL(b *testing.B) {
	for b.Loop() {
		testdb.PostgresURL(b)
	}
}

// TestDedicatedPause: while the server is paused, a query and a new connection get no answer (they end with
// their context), and after Resume the server answers again, sessions that were idle through the pause
// included.
func TestDedicatedPause(t *testing.T) {
	d := testdb.NewDedicated(t)
	ctx := context.Background()
	idle, busy := connect(t, d.URL()), connect(t, d.URL())

	d.Pause()
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := busy.Exec(short, `SELECT 1`); err == nil {
		t.Error("a query on a paused server was answered")
	}
	short2, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel2()
	if conn, err := pgx.Connect(short2, d.URL()); err == nil {
		_ = conn.Close(ctx)
		t.Error("a paused server accepted a new connection")
	}

	d.Resume()
	for _, conn := range []*pgx.Conn{idle, connect(t, d.URL())} {
		var one int
		if err := conn.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil || one != 1 {
			t.Errorf("after Resume: %d, %v", one, err)
		}
	}
}

// TestReplica makes a streaming replica and checks that it replays the primary's writes, stops showing them
// while its replay is paused, refuses writes, and catches up after a crash.
func TestReplica(t *testing.T) {
	primary := testdb.NewDedicated(t)
	ctx := context.Background()
	p := connect(t, primary.URL())
	if _, err := p.Exec(ctx, "CREATE TABLE t (n int)"); err != nil {
		t.Fatal(err)
	}
	replica := primary.NewReplica()
	if replica.URL() == primary.URL() {
		t.Fatalf("the replica's URL is the primary's: %s", replica.URL())
	}
	count := func() int {
		t.Helper()
		r := connect(t, replica.URL())
		defer r.Close(ctx)
		var n int
		if err := r.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	insert := func() {
		t.Helper()
		if _, err := p.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
			t.Fatal(err)
		}
	}
	insert()
	replica.CatchUp()
	if n := count(); n != 1 {
		t.Fatalf("replica shows %d rows, want 1", n)
	}
	if _, err := connect(t, replica.URL()).Exec(ctx, "INSERT INTO t VALUES (2)"); err == nil {
		t.Error("the replica accepted a write")
	}

	replica.PauseReplay()
	insert()
	time.Sleep(200 * time.Millisecond)
	if n := count(); n != 1 {
		t.Fatalf("replica with its replay paused shows %d rows, want 1", n)
	}
	replica.ResumeReplay()
	replica.CatchUp()
	if n := count(); n != 2 {
		t.Fatalf("replica after resuming shows %d rows, want 2", n)
	}

	replica.Kill()
	insert()
	replica.Start()
	replica.CatchUp()
	if n := count(); n != 3 {
		t.Fatalf("replica after a crash shows %d rows, want 3", n)
	}
}
