// Package wastore is Causeway's persistent implementation of whatsmeow's device store
// (go.mau.fi/whatsmeow/store): device keys, Signal sessions, prekeys, sender keys, app state
// keys, versions and mutation MACs, contacts, chat settings, message secrets, privacy tokens,
// the decrypted-event buffer and the LID<->phone number map, on a dbutil.Database (SQLite
// through modernc.org/sqlite, or PostgreSQL through lib/pq).
//
// whatsmeow's own store/sqlstore cannot be used: it needs an older go.mau.fi/util than the
// one mautrix requires. This package has its own schema (tables wastore_*) under its own
// version table (VersionTable), built from the embedded upgrades/*.sql.
//
// Where it behaves differently from sqlstore, on purpose:
//   - One-time prekey IDs come from a per-device counter that never goes back, so an ID whose
//     key was consumed is not reissued with a different key (sqlstore uses MAX(id)+1).
//   - GetManyLIDsForPNs keeps each JID's device on every path (sqlstore drops it when the
//     answer comes from the database rather than its cache).
//   - A privacy token only replaces a stored one with an equal or newer timestamp.
//   - Address prefixes ("everything of this phone number") are matched literally, not with
//     LIKE, where '_' in LID users ("123_1") would be a wildcard.
//   - The whole ADVSignedDeviceIdentity is stored as one protobuf column, NULL before pairing,
//     so a device can be saved before it has an Account (simulator phones do that).
//   - A device's stores are wired by NewDevice already and bound to the JID on PutDevice;
//     before that, and after DeleteDevice, they fail with ErrDeviceIDMustBeSet.
//   - Contacts are keyed by user (JID without device).
//
// Caches (LID map per container, contacts per device) assume one Container per database.
package wastore
