package devserver

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// waitServing polls ready every interval until it returns nil, the server process exits (exited
// closes), ctx ends or timeout passes; the last error from ready says why it was not serving.
func waitServing(ctx context.Context, exited <-chan struct{}, timeout, interval time.Duration, ready func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		probeCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ready(probeCtx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("the server exited during startup")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving within %s: %w", timeout, err)
		}
	}
}
