-- Readers' reports of a comment, at most one per reader, and the count moderators see.

CREATE TABLE reports (
    comment_id bigint NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
    reporter   bytea NOT NULL,
    reason     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (comment_id, reporter)
);

ALTER TABLE comments ADD COLUMN report_count integer NOT NULL DEFAULT 0;

CREATE INDEX audit_log_id_desc ON audit_log (id DESC);
