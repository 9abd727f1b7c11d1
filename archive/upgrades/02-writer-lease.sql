-- v2: The writer lease

-- At most one row: the process that has the archive open for writing (lease.go). machine, pid_ns, pid,
-- pid_start and lock_file let a process on the same machine tell at once that the holder has died;
-- expires_ts (Unix milliseconds) ends the lease of a holder that can only be waited out.
CREATE TABLE archive_writer (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	token      TEXT    NOT NULL,
	purpose    TEXT    NOT NULL,
	host       TEXT    NOT NULL,
	machine    TEXT    NOT NULL,
	pid_ns     TEXT    NOT NULL,
	pid        BIGINT  NOT NULL,
	pid_start  TEXT    NOT NULL,
	lock_file  TEXT    NOT NULL,
	taken_ts   BIGINT  NOT NULL,
	expires_ts BIGINT  NOT NULL
);
