package bridge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"codeberg.org/causeway/causeway/config"
)

// TestMetricsPrivacy: who uses the bridge stays out of /metrics unless the operator opts
// in, and metrics.token keeps scrapers without it out.
func TestMetricsPrivacy(t *testing.T) {
	const token = "scrape-token-0123456789"
	tests := []struct {
		name       string
		cfg        config.Metrics
		auth       string
		wantStatus int
		want       []string
		notWant    []string
	}{
		{"defaults: totals only", config.Metrics{}, "", http.StatusOK,
			[]string{"causeway_whatsapp_logins_connected 1"}, []string{"@alice:example.org", "@bob:example.org", "causeway_whatsapp_connected"}},
		{"per-user labels opted in", config.Metrics{PerUserLabels: true}, "", http.StatusOK,
			[]string{`causeway_whatsapp_connected{user="@alice:example.org"} 1`, `causeway_whatsapp_connected{user="@bob:example.org"} 0`, "causeway_whatsapp_logins_connected 1"}, nil},
		{"token set, none sent", config.Metrics{Token: token}, "", http.StatusUnauthorized, nil, []string{"causeway_"}},
		{"token set, wrong one sent", config.Metrics{Token: token}, "Bearer " + token + "x", http.StatusUnauthorized, nil, []string{"causeway_"}},
		{"token set and sent", config.Metrics{Token: token}, "Bearer " + token, http.StatusOK, []string{"causeway_whatsapp_logins_connected 1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMetrics(tt.cfg)
			m.setConnected("@alice:example.org", true)
			m.setConnected("@bob:example.org", true)
			m.setConnected("@bob:example.org", false)
			m.setConnected("@bob:example.org", false) // a disconnect reported twice counts once
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			m.handler().ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(body), w) {
					t.Errorf("/metrics lacks %s", w)
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(string(body), nw) {
					t.Errorf("/metrics shows %s", nw)
				}
			}
		})
	}
}
