package wasim

import (
	"context"
	"fmt"
	"sync"

	"go.mau.fi/whatsmeow"
)

// Events records everything a whatsmeow client dispatches, so a test can wait for an event that may
// already have happened (messages routinely arrive before events.Connected).
type Events struct {
	mu       sync.Mutex
	list     []any
	consumed []bool
	changed  chan struct{}
}

// RecordEvents starts recording a client's events.
func RecordEvents(cli *whatsmeow.Client) *Events {
	e := &Events{changed: make(chan struct{})}
	cli.AddEventHandler(e.add)
	return e
}

func (e *Events) add(evt any) {
	e.mu.Lock()
	e.list = append(e.list, evt)
	e.consumed = append(e.consumed, false)
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

// All returns every event recorded so far.
func (e *Events) All() []any {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]any(nil), e.list...)
}

// Wait returns the oldest recorded event that matches and was not returned by an earlier Wait, waiting
// for one to arrive until ctx ends.
func (e *Events) Wait(ctx context.Context, match func(any) bool) (any, error) {
	for {
		e.mu.Lock()
		for i, evt := range e.list {
			if !e.consumed[i] && match(evt) {
				e.consumed[i] = true
				e.mu.Unlock()
				return evt, nil
			}
		}
		changed := e.changed
		e.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for event: %w", ctx.Err())
		}
	}
}

// WaitFor waits for the next unconsumed event of type T that satisfies match (nil matches any).
func WaitFor[T any](ctx context.Context, e *Events, match func(T) bool) (T, error) {
	evt, err := e.Wait(ctx, func(evt any) bool {
		typed, ok := evt.(T)
		return ok && (match == nil || match(typed))
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return evt.(T), nil
}
