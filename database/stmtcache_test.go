package database

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

func openCachedSQLite(t *testing.T, maxConns int) *sql.DB {
	t.Helper()
	db, err := openSQLite(SQLiteDSN(filepath.Join(t.TempDir(), "cache.db")))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(maxConns)
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestStmtCacheReusesStatementsCorrectly(t *testing.T) {
	ctx := context.Background()
	db := openCachedSQLite(t, 1)
	const insert = "INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v=excluded.v"
	const get = "SELECT v FROM kv WHERE k=$1"
	for i := range 3 * stmtCacheSize {
		// The same statements over and over, plus one distinct query per round, which
		// pushes the cache past its bound.
		if _, err := db.ExecContext(ctx, insert, i%10, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
		var v string
		if err := db.QueryRowContext(ctx, get, i%10).Scan(&v); err != nil {
			t.Fatal(err)
		} else if want := fmt.Sprint("v", i); v != want {
			t.Fatalf("round %d: read %q, want %q", i, v, want)
		}
		var n int
		if err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) + %d FROM kv", i)).Scan(&n); err != nil {
			t.Fatal(err)
		} else if want := i + min(i+1, 10); n != want {
			t.Fatalf("round %d: distinct query returned %d, want %d", i, n, want)
		}
	}
	// A failed statement leaves the cached statement usable.
	if _, err := db.ExecContext(ctx, "INSERT INTO kv (k, v) VALUES ($1, NULL)", 99); err == nil {
		t.Fatal("a NOT NULL violation succeeded")
	}
	if _, err := db.ExecContext(ctx, insert, 99, "ok"); err != nil {
		t.Fatalf("the statement after a failure: %v", err)
	}
}

func TestStmtCacheQueryWhileSameQueryIsOpen(t *testing.T) {
	ctx := context.Background()
	db := openCachedSQLite(t, 1)
	for i := range 5 {
		if _, err := db.ExecContext(ctx, "INSERT INTO kv (k, v) VALUES ($1, $2)", i, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	const list = "SELECT k FROM kv WHERE k >= $1 ORDER BY k"
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, list, 0)
	if err != nil {
		t.Fatal(err)
	}
	var outer, inner []int
	for rows.Next() {
		var k int
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		outer = append(outer, k)
		// The same query on the same connection while the outer rows are open must not
		// reset the statement under them.
		var first int
		if err := tx.QueryRowContext(ctx, list, k).Scan(&first); err != nil {
			t.Fatal(err)
		}
		inner = append(inner, first)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(outer) != "[0 1 2 3 4]" || fmt.Sprint(inner) != "[0 1 2 3 4]" {
		t.Fatalf("outer rows %v, inner firsts %v", outer, inner)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkStmtCache(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		open func(string) (*sql.DB, error)
	}{
		{"cached", openSQLite},
		{"uncached", func(dsn string) (*sql.DB, error) { return sql.Open("sqlite", dsn) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			db, err := tc.open(SQLiteDSN(filepath.Join(b.TempDir(), "bench.db")))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				var v string
				err := db.QueryRowContext(ctx, "SELECT v FROM kv WHERE k=$1", i).Scan(&v)
				if err != nil && err != sql.ErrNoRows {
					b.Fatal(err)
				}
			}
		})
	}
}
