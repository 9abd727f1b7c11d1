package wastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// withAlt returns jid (without device) and, when the LID map knows it, its other identity:
// a message or token stored under a phone number must be found when asked by LID and back.
func (s *deviceStore) withAlt(ctx context.Context, jid types.JID) ([]string, error) {
	jid = jid.ToNonAD()
	alt, err := s.c.lids.alt(ctx, jid)
	if err != nil {
		return nil, err
	}
	if alt.IsEmpty() {
		return []string{jid.String()}, nil
	}
	return []string{jid.String(), alt.ToNonAD().String()}, nil
}

// --- store.MsgSecretStore ---

const insertSecretsPrefix = "INSERT INTO wastore_message_secret (device_jid, chat_jid, sender_jid, message_id, secret) VALUES "

// The first secret stored for a message stays: a later copy (say, from history sync) must
// not replace the key that encrypted the original's edits and reactions.
const insertSecretsSuffix = " ON CONFLICT (device_jid, chat_jid, sender_jid, message_id) DO NOTHING"

func (s *deviceStore) PutMessageSecrets(ctx context.Context, inserts []store.MessageSecretInsert) error {
	jid, err := s.ownJID()
	if err != nil {
		return err
	}
	if len(inserts) == 0 {
		return nil
	}
	return s.c.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, chunk := range chunks(inserts, maxRowsPerInsert) {
			args := make([]any, 0, 1+4*len(chunk))
			args = append(args, jid)
			for _, in := range chunk {
				args = append(args, in.Chat.ToNonAD().String(), in.Sender.ToNonAD().String(), in.ID, in.Secret)
			}
			if _, err := s.c.db.Exec(ctx, insertSecretsPrefix+valueTuples(len(chunk), 4)+insertSecretsSuffix, args...); err != nil {
				return fmt.Errorf("failed to store %d message secrets: %w", len(chunk), err)
			}
		}
		return nil
	})
}

func (s *deviceStore) PutMessageSecret(ctx context.Context, chat, sender types.JID, id types.MessageID, secret []byte) error {
	return s.exec(ctx, "store secret of message "+id, insertSecretsPrefix+"($1, $2, $3, $4, $5)"+insertSecretsSuffix,
		chat.ToNonAD().String(), sender.ToNonAD().String(), id, secret)
}

// GetMessageSecret finds the secret whether chat and sender were stored by phone number or
// by LID, and returns the sender as it was stored. Both nil/empty when unknown.
func (s *deviceStore) GetMessageSecret(ctx context.Context, chat, sender types.JID, id types.MessageID) ([]byte, types.JID, error) {
	jid, err := s.ownJID()
	if err != nil {
		return nil, types.EmptyJID, err
	}
	chats, err := s.withAlt(ctx, chat)
	if err != nil {
		return nil, types.EmptyJID, fmt.Errorf("failed to resolve chat %s: %w", chat, err)
	}
	senders, err := s.withAlt(ctx, sender)
	if err != nil {
		return nil, types.EmptyJID, fmt.Errorf("failed to resolve sender %s: %w", sender, err)
	}
	args := []any{jid, id}
	for _, c := range chats {
		args = append(args, c)
	}
	for _, snd := range senders {
		args = append(args, snd)
	}
	query := "SELECT secret, sender_jid FROM wastore_message_secret WHERE device_jid=$1 AND message_id=$2" +
		" AND chat_jid IN (" + placeholderList(3, len(chats)) + ")" +
		" AND sender_jid IN (" + placeholderList(3+len(chats), len(senders)) + ")" +
		// Both identities can hold a row; the one under the identity asked about wins.
		" ORDER BY CASE WHEN chat_jid=$3 THEN 0 ELSE 1 END, CASE WHEN sender_jid=$" + fmt.Sprint(3+len(chats)) + " THEN 0 ELSE 1 END LIMIT 1"
	var secret []byte
	var storedSender types.JID
	err = s.c.db.QueryRow(ctx, query, args...).Scan(&secret, &storedSender)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, types.EmptyJID, nil
	} else if err != nil {
		return nil, types.EmptyJID, fmt.Errorf("failed to get secret of message %s: %w", id, err)
	}
	return secret, storedSender, nil
}

// --- store.PrivacyTokenStore ---

// PutPrivacyTokens keeps, per user, the token with the newest timestamp: history sync can
// deliver tokens older than one a notification has just brought.
func (s *deviceStore) PutPrivacyTokens(ctx context.Context, tokens ...store.PrivacyToken) error {
	jid, err := s.ownJID()
	if err != nil {
		return err
	}
	if len(tokens) == 0 {
		return nil
	}
	tokens = lastWins(tokens, func(t store.PrivacyToken) types.JID { return t.User.ToNonAD() })
	return s.c.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, chunk := range chunks(tokens, maxRowsPerInsert) {
			args := make([]any, 0, 1+3*len(chunk))
			args = append(args, jid)
			for _, t := range chunk {
				args = append(args, t.User.ToNonAD().String(), t.Token, t.Timestamp.Unix())
			}
			_, err := s.c.db.Exec(ctx, "INSERT INTO wastore_privacy_token (device_jid, user_jid, token, issued_ts) VALUES "+
				valueTuples(len(chunk), 3)+` ON CONFLICT (device_jid, user_jid) DO UPDATE
					SET token=excluded.token, issued_ts=excluded.issued_ts
					WHERE excluded.issued_ts >= wastore_privacy_token.issued_ts`, args...)
			if err != nil {
				return fmt.Errorf("failed to store %d privacy tokens: %w", len(chunk), err)
			}
		}
		return nil
	})
}

// GetPrivacyToken returns the newest token stored for the user under either identity
// (phone number or LID), labelled with the JID asked for; nil when there is none.
func (s *deviceStore) GetPrivacyToken(ctx context.Context, user types.JID) (*store.PrivacyToken, error) {
	jid, err := s.ownJID()
	if err != nil {
		return nil, err
	}
	users, err := s.withAlt(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("failed to resolve %s: %w", user, err)
	}
	args := []any{jid}
	for _, u := range users {
		args = append(args, u)
	}
	token := store.PrivacyToken{User: user.ToNonAD()}
	var issued int64
	err = s.c.db.QueryRow(ctx, "SELECT token, issued_ts FROM wastore_privacy_token WHERE device_jid=$1 AND user_jid IN ("+
		placeholderList(2, len(users))+") ORDER BY issued_ts DESC LIMIT 1", args...).Scan(&token.Token, &issued)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to get privacy token of %s: %w", user, err)
	}
	token.Timestamp = time.Unix(issued, 0)
	return &token, nil
}

// --- store.EventBuffer ---

// eventBufferRetention matches how long WhatsApp's servers keep undelivered events; a hash
// older than that can no longer be redelivered.
const eventBufferRetention = 14 * 24 * time.Hour

func (s *deviceStore) GetBufferedEvent(ctx context.Context, ciphertextHash [32]byte) (*store.BufferedEvent, error) {
	jid, err := s.ownJID()
	if err != nil {
		return nil, err
	}
	if maybe, err := s.c.filterFor(jid).mayContain(ctx, s, jid, ciphertextHash); err != nil {
		return nil, err
	} else if !maybe {
		return nil, nil
	}
	var evt store.BufferedEvent
	var serverMS, insertMS int64
	var handled bool
	err = s.c.db.QueryRow(ctx, `
		SELECT plaintext IS NULL, plaintext, server_ts_ms, insert_ts_ms
		FROM wastore_event_buffer WHERE device_jid=$1 AND ciphertext_hash=$2`,
		jid, ciphertextHash[:]).Scan(&handled, &evt.Plaintext, &serverMS, &insertMS)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to get buffered event %x: %w", ciphertextHash, err)
	}
	if !handled && evt.Plaintext == nil {
		// The SQLite driver reads an empty BLOB as nil, which whatsmeow would take for "handled".
		evt.Plaintext = []byte{}
	}
	if s.clearPending(ciphertextHash) {
		evt.Plaintext = nil
	}
	evt.ServerTime = time.UnixMilli(serverMS)
	evt.InsertTime = time.UnixMilli(insertMS)
	return &evt, nil
}

// PutBufferedEvent fails if the hash is already buffered: inside DoDecryptionTxn that rolls
// back the second decryption of a redelivered event instead of double-advancing the ratchet.
func (s *deviceStore) PutBufferedEvent(ctx context.Context, ciphertextHash [32]byte, plaintext []byte, serverTimestamp time.Time) error {
	if plaintext == nil {
		// NULL means "already handled"; an empty plaintext is still a plaintext.
		plaintext = []byte{}
	}
	jid, err := s.ownJID()
	if err != nil {
		return err
	}
	s.c.filterFor(jid).add(ciphertextHash)
	return s.exec(ctx, fmt.Sprintf("buffer decrypted event %x", ciphertextHash), `
		INSERT INTO wastore_event_buffer (device_jid, ciphertext_hash, plaintext, server_ts_ms, insert_ts_ms)
		VALUES ($1, $2, $3, $4, $5)`,
		ciphertextHash[:], plaintext, serverTimestamp.UnixMilli(), time.Now().UnixMilli())
}

// DoDecryptionTxn runs fn in one transaction, so the Signal state a decryption advances and
// the buffered plaintext are committed together or not at all. The transaction also carries
// the plaintext clears left pending since the last one (see ClearBufferedEventPlaintext).
func (s *deviceStore) DoDecryptionTxn(ctx context.Context, fn func(context.Context) error) error {
	// Attribute slow-transaction warnings to whatsmeow's caller, not to this wrapper.
	ctx = context.WithValue(ctx, dbutil.ContextKeyDoTxnCallerSkip, 2)
	clears := s.takeClears()
	err := s.c.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		if err := s.runClears(ctx, clears); err != nil {
			return err
		}
		return fn(ctx)
	})
	if err != nil {
		s.rearmClears(clears)
	} else {
		s.doneClears(clears)
	}
	return err
}

// clearDelay bounds how long a handled event's plaintext waits for a decryption transaction
// to carry its clearing before a commit of its own does.
const clearDelay = time.Second

// ClearBufferedEventPlaintext keeps the hash (to recognise redelivery) but drops the plaintext
// once the event has been handled. whatsmeow calls it for every message, right after the
// handler; a commit of its own per message cost as much as the queue insert. The clear is
// therefore remembered (GetBufferedEvent reports the event handled at once) and written with
// the next decryption's transaction, or within clearDelay. Nothing depends on it being
// durable: a redelivery of an event whose clear was lost in a crash is handled again, and
// the bridge's queue and message table drop the duplicate.
func (s *deviceStore) ClearBufferedEventPlaintext(ctx context.Context, ciphertextHash [32]byte) error {
	if _, err := s.ownJID(); err != nil {
		return err
	}
	if !s.c.notePending(s) {
		return s.runClears(ctx, [][32]byte{ciphertextHash}) // closing: nothing would write it later
	}
	s.clearLock.Lock()
	defer s.clearLock.Unlock()
	s.clears[ciphertextHash] = struct{}{}
	if s.clearTimer == nil {
		s.clearTimer = time.AfterFunc(clearDelay, s.flushClears)
	}
	return nil
}

// notePending registers s for Close to flush; false once the container is closed.
func (c *Container) notePending(s *deviceStore) bool {
	c.pendingLock.Lock()
	defer c.pendingLock.Unlock()
	if c.closed {
		return false
	}
	c.pending[s] = struct{}{}
	return true
}

func (s *deviceStore) clearPending(hash [32]byte) bool {
	s.clearLock.Lock()
	defer s.clearLock.Unlock()
	_, ok := s.clears[hash]
	return ok
}

// takeClears lists the pending clears for a transaction to write. They stay pending (and
// visible to GetBufferedEvent) until doneClears, after the commit.
func (s *deviceStore) takeClears() [][32]byte {
	s.clearLock.Lock()
	defer s.clearLock.Unlock()
	if len(s.clears) == 0 {
		return nil
	}
	out := make([][32]byte, 0, len(s.clears))
	for h := range s.clears {
		out = append(out, h)
	}
	return out
}

// rearmClears makes sure clears that a failed transaction did not write are tried again.
func (s *deviceStore) rearmClears(hashes [][32]byte) {
	if len(hashes) == 0 || !s.c.notePending(s) {
		return
	}
	s.clearLock.Lock()
	defer s.clearLock.Unlock()
	if s.clearTimer == nil {
		s.clearTimer = time.AfterFunc(clearDelay, s.flushClears)
	}
}

func (s *deviceStore) runClears(ctx context.Context, hashes [][32]byte) error {
	for _, h := range hashes {
		if err := s.exec(ctx, fmt.Sprintf("clear buffered event %x", h),
			"UPDATE wastore_event_buffer SET plaintext=NULL WHERE device_jid=$1 AND ciphertext_hash=$2", h[:]); err != nil {
			return err
		}
	}
	return nil
}

// doneClears forgets clears that a committed transaction wrote.
func (s *deviceStore) doneClears(hashes [][32]byte) {
	s.clearLock.Lock()
	defer s.clearLock.Unlock()
	for _, h := range hashes {
		delete(s.clears, h)
	}
}

// flushClears writes the pending clears in a transaction of their own, when no decryption
// came along to carry them.
func (s *deviceStore) flushClears() {
	// One flush at a time, so that Close's flush waits for a timer's that is under way.
	s.flushLock.Lock()
	defer s.flushLock.Unlock()
	s.clearLock.Lock()
	if s.clearTimer != nil {
		s.clearTimer.Stop() // when Close flushes first
		s.clearTimer = nil
	}
	s.clearLock.Unlock()
	clears := s.takeClears()
	if len(clears) == 0 {
		return
	}
	ctx := context.Background()
	err := s.c.db.DoTxn(ctx, nil, func(ctx context.Context) error { return s.runClears(ctx, clears) })
	if err != nil {
		// They stay pending: the next decryption or clear tries again. No timer loop, which
		// would outlive a closed database.
		s.c.log.Warnf("Failed to clear %d handled events' plaintext: %v", len(clears), err)
		return
	}
	s.doneClears(clears)
}

func (s *deviceStore) DeleteOldBufferedHashes(ctx context.Context) error {
	jid, err := s.ownJID()
	if err != nil {
		return err
	}
	if err := s.exec(ctx, "delete old buffered events",
		"DELETE FROM wastore_event_buffer WHERE device_jid=$1 AND insert_ts_ms < $2",
		time.Now().Add(-eventBufferRetention).UnixMilli()); err != nil {
		return err
	}
	return s.c.filterFor(jid).reload(ctx, s, jid)
}
