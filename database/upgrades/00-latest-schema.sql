-- v0 -> v1: Latest schema
CREATE TABLE bridge_user (
    mxid            TEXT   PRIMARY KEY,
    management_room TEXT,
    created_at      BIGINT NOT NULL
);

CREATE TABLE kv_store (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
