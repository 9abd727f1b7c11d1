package bridge

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// jobs owns the bridge's background work: whatever outlives the event, command or request that started
// it (archive verify/export/dispose, contact sync, the avatar drain, imports, logins). Stop cancels
// them and waits for them before it closes the archive and the database they write to; without that
// a job still running would write to a closed database, or append to an archive whose final
// checkpoint has already been issued.
type jobs struct {
	log    zerolog.Logger
	ctx    context.Context // ends when the bridge stops
	cancel context.CancelFunc

	mu      sync.Mutex
	stopped bool
	running map[string]int // by name, for the log while Stop waits
	wg      sync.WaitGroup
}

func newJobs(log zerolog.Logger) *jobs {
	ctx, cancel := context.WithCancel(context.Background())
	return &jobs{log: log, ctx: ctx, cancel: cancel, running: map[string]int{}}
}

// Go runs fn in a goroutine of its own, with ctx also ending when the bridge stops. Work that must not
// end with the event that started it passes context.WithoutCancel(ctx). Once the bridge is stopping, Go
// runs nothing and returns false.
func (j *jobs) Go(ctx context.Context, name string, fn func(ctx context.Context)) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stopped {
		j.log.Debug().Str("job", name).Msg("Not starting a background job: the bridge is stopping")
		return false
	}
	j.running[name]++
	j.wg.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(j.ctx, cancel)
	go func() {
		defer j.done(name)
		defer unhook()
		defer cancel()
		fn(ctx)
	}()
	return true
}

func (j *jobs) done(name string) {
	j.mu.Lock()
	if j.running[name]--; j.running[name] == 0 {
		delete(j.running, name)
	}
	j.mu.Unlock()
	j.wg.Done()
}

// until returns ctx, also ending when the bridge stops, for work the caller runs itself (an HTTP
// handler, which the server's shutdown waits for).
func (j *jobs) until(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(j.ctx, cancel)
	return ctx, func() { unhook(); cancel() }
}

// stop cancels every job and refuses new ones; wait then waits for them.
func (j *jobs) stop() {
	j.mu.Lock()
	j.stopped = true
	j.mu.Unlock()
	j.cancel()
}

// jobsReport is how often wait says what it is still waiting for.
const jobsReport = 5 * time.Second

func (j *jobs) wait() {
	finished := make(chan struct{})
	go func() {
		j.wg.Wait()
		close(finished)
	}()
	ticker := time.NewTicker(jobsReport)
	defer ticker.Stop()
	for {
		select {
		case <-finished:
			return
		case <-ticker.C:
			j.mu.Lock()
			names := slices.Sorted(maps.Keys(j.running))
			j.mu.Unlock()
			j.log.Warn().Strs("jobs", names).Msg("Still waiting for background jobs to stop")
		}
	}
}

// every calls fn every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		fn()
	}
}
