package database

import (
	"container/list"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"

	"modernc.org/sqlite"
)

// stmtCacheSize bounds the statements one SQLite connection keeps prepared. The relay path
// uses a few dozen distinct queries; multi-row inserts with a variable number of rows make
// more, and those are the ones the bound evicts.
const stmtCacheSize = 128

// openSQLite opens the SQLite pool with statements cached per connection. Parsing and
// planning a statement costs more CPU than running the small keyed reads and writes the
// relay path is made of, and neither the driver nor dbutil keeps them, so every Exec and
// Query would otherwise compile its SQL again.
func openSQLite(dsn string) (*sql.DB, error) {
	base, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(stmtCachingConnector{base}), nil
}

type stmtCachingConnector struct{ driver.Connector }

func (c stmtCachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	inner, ok := conn.(sqliteConn)
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("the SQLite driver's connection (%T) lacks the context methods the statement cache needs", conn)
	}
	return &stmtCachingConn{sqliteConn: inner, byQuery: map[string]*list.Element{}, lru: list.New()}, nil
}

// sqliteConn is what every modernc.org/sqlite connection implements; the wrapper forwards
// all of it so that database/sql keeps using the context-aware paths.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type cachedStmt struct {
	query string
	stmt  driver.Stmt
	// inUse is set while rows read from the statement are open: within a transaction the
	// same query can run again on the connection before they are closed, and resetting the
	// statement under them would cut them short.
	inUse bool
}

// stmtCachingConn is used by one goroutine at a time (database/sql guarantees that for a
// driver connection), so it needs no lock.
type stmtCachingConn struct {
	sqliteConn
	byQuery map[string]*list.Element
	lru     *list.List // of *cachedStmt, most recently used first
}

// Unwrap lets the driver's own helpers reach the connection.
func (c *stmtCachingConn) Unwrap() driver.Conn { return c.sqliteConn }

// stmtFor returns the prepared statement of query, or nil when it is busy and the query
// must go the uncached way.
func (c *stmtCachingConn) stmtFor(ctx context.Context, query string) (*cachedStmt, error) {
	if el, ok := c.byQuery[query]; ok {
		cs := el.Value.(*cachedStmt)
		if cs.inUse {
			return nil, nil
		}
		c.lru.MoveToFront(el)
		return cs, nil
	}
	stmt, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	cs := &cachedStmt{query: query, stmt: stmt}
	c.byQuery[query] = c.lru.PushFront(cs)
	for c.lru.Len() > stmtCacheSize {
		if !c.evict() {
			break
		}
	}
	return cs, nil
}

// evict closes the least recently used statement that is not in use.
func (c *stmtCachingConn) evict() bool {
	for el := c.lru.Back(); el != nil; el = el.Prev() {
		cs := el.Value.(*cachedStmt)
		if cs.inUse {
			continue
		}
		c.lru.Remove(el)
		delete(c.byQuery, cs.query)
		_ = cs.stmt.Close()
		return true
	}
	return false
}

func (c *stmtCachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.stmtFor(ctx, query)
	if err != nil {
		return nil, err
	} else if cs == nil {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	return cs.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *stmtCachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.stmtFor(ctx, query)
	if err != nil {
		return nil, err
	} else if cs == nil {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	cs.inUse = true
	return &cachedStmtRows{Rows: rows, cs: cs}, nil
}

func (c *stmtCachingConn) Close() error {
	var errs []error
	for el := c.lru.Front(); el != nil; el = el.Next() {
		errs = append(errs, el.Value.(*cachedStmt).stmt.Close())
	}
	c.lru.Init()
	clear(c.byQuery)
	return errors.Join(append(errs, c.sqliteConn.Close())...)
}

// cachedStmtRows frees its statement for the next query when closed, and passes on the
// column type information of the driver's rows.
type cachedStmtRows struct {
	driver.Rows
	cs *cachedStmt
}

func (r *cachedStmtRows) Close() error {
	err := r.Rows.Close()
	r.cs.inUse = false
	return err
}

// sqliteRows is the column type information modernc.org/sqlite's rows provide.
type sqliteRows interface {
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeLength
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
}

func (r *cachedStmtRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(sqliteRows); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedStmtRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(sqliteRows); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedStmtRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(sqliteRows); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedStmtRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(sqliteRows); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *cachedStmtRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(sqliteRows); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
