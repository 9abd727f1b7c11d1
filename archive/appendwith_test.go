package archive

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// The caller's write commits with its entry, also when entries of other callers share the
// transaction, and a failing write takes its entry with it.
func TestAppendWithCommitsTheCallersWriteWithTheEntry(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	if _, err := env.db.Exec(ctx, "CREATE TABLE archived_marks (n INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	mark := func(n int) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := env.db.Exec(ctx, "INSERT INTO archived_marks (n) VALUES ($1)", n)
			return err
		}
	}
	const writers = 16
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			_, errs[i] = env.a.AppendWith(ctx, textMessage(group, alice, "Alice", fmt.Sprint("MSG", i), "hello", t0), mark(i))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var marks int
	if err := env.db.QueryRow(ctx, "SELECT COUNT(*) FROM archived_marks").Scan(&marks); err != nil || marks != writers {
		t.Fatalf("%d marks (%v), want %d", marks, err, writers)
	}
	before := env.a.size.Load()
	failing := func(context.Context) error { return errors.New("no") }
	if _, err := env.a.AppendWith(ctx, textMessage(group, alice, "Alice", "FAIL", "lost", t0), failing); err == nil {
		t.Fatal("AppendWith succeeded although its write failed")
	}
	if after := env.a.size.Load(); after != before {
		t.Fatalf("size went from %d to %d: the entry of a failed write was committed", before, after)
	}
	if rep := env.verify(VerifyOptions{}); !rep.OK() {
		t.Fatalf("verify:%s", problemList(rep.Problems))
	}
}
