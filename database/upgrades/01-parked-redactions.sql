-- v2: Matrix deletions waiting for the message they delete

-- A Matrix user's redaction that reached the bridge before its target did: Dendrite hands
-- users' redactions to the bridge through the bot's sync and everything else through
-- appservice transactions, in either order. The target, whenever it comes, is not sent to
-- WhatsApp. state is waiting, then expired (the user was told the target had not come within
-- bridge.redaction_wait) or withheld (it came and was not sent). The row outlives both, so
-- that a redelivery of the target is not sent either.
CREATE TABLE parked_redaction (
    chat_jid       TEXT   NOT NULL,
    receiver       TEXT   NOT NULL,
    target_mxid    TEXT   NOT NULL,
    redaction_mxid TEXT   NOT NULL,
    -- The target's event type and origin_server_ts as the homeserver gave them ('' and 0
    -- when it did not), for the notice.
    target_type    TEXT   NOT NULL DEFAULT '',
    target_sent_at BIGINT NOT NULL DEFAULT 0,
    redacted_at    BIGINT NOT NULL,
    parked_at      BIGINT NOT NULL,
    state          TEXT   NOT NULL DEFAULT 'waiting',
    PRIMARY KEY (receiver, target_mxid),
    FOREIGN KEY (chat_jid, receiver) REFERENCES portal(chat_jid, receiver) ON DELETE CASCADE
);
CREATE INDEX parked_redaction_waiting_idx ON parked_redaction (state, parked_at);
