package bridge

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"

	"codeberg.org/causeway/causeway/config"
)

// The WhatsApp Web client version the bridge announces at login. WhatsApp refuses versions it has
// retired (405, "client outdated"), and the pinned whatsmeow carries the version of the day it was
// built, so the bridge reads the current one from web.whatsapp.com at start, remembers it for starts
// without internet access, and lets the operator set one.

// kvWAVersion keeps the last version fetched, for a start that cannot reach web.whatsapp.com.
const kvWAVersion = "whatsapp_web_version"

// versionFetchTimeout bounds the fetch at start: a bridge without internet access must not wait long
// for it, and the cached or built-in version is usually still accepted.
const versionFetchTimeout = 5 * time.Second

// builtInWAVersion is what this build of whatsmeow announces unless told otherwise, read before
// anything in the process can change it.
var builtInWAVersion = store.GetWAVersion()

// BuiltInWhatsAppVersion is the WhatsApp Web version this build announces when it has no newer one.
func BuiltInWhatsAppVersion() string { return builtInWAVersion.String() }

// waVersionInUse is the version the bridge announces and where it came from, for ping and the log.
type waVersionInUse struct {
	mu      sync.Mutex
	version store.WAVersionContainer
	source  string
}

func (v *waVersionInUse) get() (store.WAVersionContainer, string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.version.IsZero() {
		return builtInWAVersion, "built in"
	}
	return v.version, v.source
}

func (v *waVersionInUse) set(version store.WAVersionContainer, source string) {
	v.mu.Lock()
	v.version, v.source = version, source
	v.mu.Unlock()
	applyWAVersion(version)
}

// applyWAVersion makes whatsmeow announce version. It is process-wide state whatsmeow forces on us,
// and in this whatsmeow store.SetWAVersion alone does not change the login payload: the payload's
// AppVersion was copied from the built-in version at init. Written only on a change, because clients
// read both while connecting.
func applyWAVersion(version store.WAVersionContainer) {
	if version.IsZero() || store.GetWAVersion() == version {
		return
	}
	store.SetWAVersion(version)
	store.BaseClientPayload.UserAgent.AppVersion = version.ProtoAppVersion()
}

func (b *Bridge) versionHTTP() *http.Client {
	if b.opts.VersionHTTP != nil {
		return b.opts.VersionHTTP
	}
	return b.waHTTP()
}

// resolveWAVersion picks the version to announce: the configured one, else the current one from
// web.whatsapp.com, else the cached one, else the built-in one, and says which in the log.
func (b *Bridge) resolveWAVersion(ctx context.Context) {
	if s := b.cfg.WhatsApp.Version; s != "" {
		parts, _ := config.ParseWAVersion(s) // validated at load
		b.waVersion.set(store.WAVersionContainer(parts), "whatsapp.version in the config")
		b.log.Info().Str("wa_version", s).Msg("Using the WhatsApp Web version set in the config")
		return
	}
	fetched, err := b.fetchWAVersion(ctx)
	if err == nil {
		b.waVersion.set(fetched, "fetched from web.whatsapp.com")
		if err := b.db.KV.Set(ctx, kvWAVersion, fetched.String()); err != nil {
			b.log.Warn().Err(err).Msg("Failed to cache the WhatsApp Web version")
		}
		b.log.Info().Str("wa_version", fetched.String()).Str("built_in", builtInWAVersion.String()).
			Msg("Using the current WhatsApp Web version")
		return
	}
	cached, cacheErr := b.db.KV.Get(ctx, kvWAVersion)
	if parts, perr := config.ParseWAVersion(cached); cacheErr == nil && perr == nil {
		v := store.WAVersionContainer(parts)
		// A cache older than this build's own version is no better than the built-in one.
		if builtInWAVersion.LessThan(v) {
			b.waVersion.set(v, "cached from an earlier start")
			b.log.Warn().Err(err).Str("wa_version", v.String()).
				Msg("Could not fetch the current WhatsApp Web version (offline?); using the one fetched at an earlier start")
			return
		}
	}
	b.waVersion.set(builtInWAVersion, "built in")
	b.log.Warn().Err(err).Str("wa_version", builtInWAVersion.String()).
		Msg("Could not fetch the current WhatsApp Web version (offline?); using the one this build came with")
}

func (b *Bridge) fetchWAVersion(ctx context.Context) (store.WAVersionContainer, error) {
	ctx, cancel := context.WithTimeout(ctx, versionFetchTimeout)
	defer cancel()
	v, err := whatsmeow.GetLatestVersion(ctx, b.versionHTTP())
	if err != nil {
		return store.WAVersionContainer{}, fmt.Errorf("fetch the WhatsApp Web version: %w", err)
	}
	return *v, nil
}

// refreshWAVersion fetches the version again after WhatsApp called ours outdated. It returns the
// version the next attempt will announce, and whether that is a new one.
func (b *Bridge) refreshWAVersion(ctx context.Context) (store.WAVersionContainer, bool) {
	current, _ := b.waVersion.get()
	if b.cfg.WhatsApp.Version != "" {
		return current, false // the operator's choice stands until they change it
	}
	fetched, err := b.fetchWAVersion(ctx)
	if err != nil {
		b.log.Warn().Err(err).Msg("WhatsApp called the client outdated, and the current version could not be fetched")
		return current, false
	}
	if fetched == current {
		return current, false
	}
	b.waVersion.set(fetched, "fetched from web.whatsapp.com")
	if err := b.db.KV.Set(ctx, kvWAVersion, fetched.String()); err != nil {
		b.log.Warn().Err(err).Msg("Failed to cache the WhatsApp Web version")
	}
	b.log.Info().Str("wa_version", fetched.String()).Str("previous", current.String()).Msg("Switched to the current WhatsApp Web version")
	return fetched, true
}

// WhatsAppVersion is the WhatsApp Web version the bridge announces, and where it came from.
func (b *Bridge) WhatsAppVersion() (version, source string) {
	v, src := b.waVersion.get()
	return v.String(), src
}
