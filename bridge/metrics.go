package bridge

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"maunium.net/go/mautrix/id"

	"codeberg.org/causeway/causeway/config"
	"codeberg.org/causeway/causeway/database"
)

// metrics is the bridge's Prometheus registry. It is per bridge, not global, so tests can
// run several bridges in one process.
type metrics struct {
	registry *prometheus.Registry
	relayed  *prometheus.CounterVec
	failures *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// intake counts Matrix events by the route that delivered them (intake.go): a sync route
	// that is often first says the homeserver's pushes are late.
	intake *prometheus.CounterVec
	// connected has a series per user, labelled with their Matrix ID: nil unless the
	// operator opted in with metrics.per_user_labels.
	connected *prometheus.GaugeVec
	loginsUp  prometheus.Gauge
	queue     *prometheus.GaugeVec
	depth     func(context.Context) (map[database.Direction]int, error)
	// loginStates counts logins by state and says whether any capture gap is open, at scrape time.
	loginStates func() (map[string]int, bool)
	states      *prometheus.GaugeVec
	gapOpen     prometheus.Gauge
	token       string

	upMu sync.Mutex
	up   map[id.UserID]bool
}

func newMetrics(cfg config.Metrics) *metrics {
	m := &metrics{
		token:    cfg.Token,
		up:       map[id.UserID]bool{},
		registry: prometheus.NewRegistry(),
		relayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_messages_relayed_total", Help: "Events relayed, by direction and kind.",
		}, []string{"direction", "kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_relay_errors_total", Help: "Failed relay attempts (retried or reported), by direction and kind.",
		}, []string{"direction", "kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "causeway_relay_latency_seconds", Help: "Time from receiving an event to relaying it.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"direction"}),
		intake: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_matrix_events_delivered_total",
			Help: "Matrix events delivered to the bridge, by route (appservice push or the bot's sync) and outcome (first: queued; repeat: already taken in, skipped).",
		}, []string{"route", "outcome"}),
		loginsUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causeway_whatsapp_logins_connected", Help: "Logins whose WhatsApp connection is up.",
		}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "causeway_relay_queue_depth", Help: "Events received durably and not yet relayed.",
		}, []string{"direction"}),
		// Counts only: a label per login would tell whoever can scrape who uses the bridge.
		states: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "causeway_login_state", Help: "Logins in each state (connected, connecting, outdated, banned_until, logged_out, phone_offline, disconnected).",
		}, []string{"state"}),
		gapOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "causeway_capture_gap_open", Help: "1 while capture is stopped for any login (an open gap in the completeness ledger).",
		}),
	}
	m.registry.MustRegister(m.relayed, m.failures, m.latency, m.intake, m.loginsUp, m.queue, m.states, m.gapOpen,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	if cfg.PerUserLabels {
		m.connected = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "causeway_whatsapp_connected", Help: "1 while a login's WhatsApp connection is up.",
		}, []string{"user"})
		m.registry.MustRegister(m.connected)
	}
	return m
}

// Relayed implements portal.Observer.
func (m *metrics) Relayed(direction database.Direction, kind string, latency time.Duration) {
	m.relayed.WithLabelValues(string(direction), kind).Inc()
	m.latency.WithLabelValues(string(direction)).Observe(latency.Seconds())
}

// RelayFailed implements portal.Observer.
func (m *metrics) RelayFailed(direction database.Direction, kind string, _ error) {
	m.failures.WithLabelValues(string(direction), kind).Inc()
}

func (m *metrics) setConnected(user id.UserID, connected bool) {
	m.upMu.Lock()
	if connected {
		m.up[user] = true
	} else {
		delete(m.up, user)
	}
	m.loginsUp.Set(float64(len(m.up)))
	m.upMu.Unlock()
	if m.connected != nil {
		v := 0.0
		if connected {
			v = 1
		}
		m.connected.WithLabelValues(string(user)).Set(v)
	}
}

// handler serves /metrics, reading the queue depth at scrape time.
func (m *metrics) handler() http.Handler {
	inner := promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !m.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="causeway metrics"`)
			http.Error(w, "metrics.token is set: send it as Authorization: Bearer", http.StatusUnauthorized)
			return
		}
		if m.depth != nil {
			if depth, err := m.depth(r.Context()); err == nil {
				for _, d := range []database.Direction{database.ToMatrix, database.ToWhatsApp} {
					m.queue.WithLabelValues(string(d)).Set(float64(depth[d]))
				}
			}
		}
		if m.loginStates != nil {
			counts, gap := m.loginStates()
			for _, s := range loginStates {
				m.states.WithLabelValues(s).Set(float64(counts[s]))
			}
			v := 0.0
			if gap {
				v = 1
			}
			m.gapOpen.Set(v)
		}
		inner.ServeHTTP(w, r)
	})
}

// authorized checks metrics.token; with none set, everyone who reaches the listener may scrape.
func (m *metrics) authorized(r *http.Request) bool {
	if m.token == "" {
		return true
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(token), []byte(m.token)) == 1
}
