-- v3: Matrix events the bridge has taken in, by either route

-- Dendrite hands a Matrix user's event to the bridge twice: pushed in an appservice
-- transaction, and in the bot's own /sync (which it reads because Dendrite's pushes can stop
-- for minutes, and never carry users' redactions). Whichever comes first is queued, in the
-- same database transaction as this row; the other finds the row and does nothing. The queue's
-- dedup key covers an event only while it is queued, and the message table only events that
-- became WhatsApp messages: without this, a refused event, a reaction or a redaction would be
-- handled, and its sender told, twice. Rows are pruned by age (bridge/intake.go).
CREATE TABLE accepted_matrix_event (
    event_id    TEXT   PRIMARY KEY,
    accepted_at BIGINT NOT NULL
);
CREATE INDEX accepted_matrix_event_age_idx ON accepted_matrix_event (accepted_at);
