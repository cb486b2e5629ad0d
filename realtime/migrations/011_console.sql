-- What the moderator console needs: the feed's filters, reports a moderator has dealt with,
-- audit details, sessions a moderator can list and end, and failed logins counted where every
-- node sees them.

-- Approving a reported comment dismisses its reports; they stay as history.
ALTER TABLE reports ADD COLUMN dismissed_at timestamptz;
-- The "reported" filter: approved comments with open reports, newest first.
CREATE INDEX comments_reported ON comments (id) WHERE report_count > 0 AND status = 'approved';
-- An author's history when they gave no e-mail is read by name.
CREATE INDEX comments_author_name ON comments (author_name) WHERE author_email IS NULL;

ALTER TABLE audit_log ADD COLUMN detail jsonb;
CREATE INDEX audit_log_moderator_id ON audit_log (moderator, id DESC);

ALTER TABLE sessions ADD COLUMN id bigserial UNIQUE;
ALTER TABLE sessions ADD COLUMN ip inet;
ALTER TABLE sessions ADD COLUMN user_agent text;
CREATE INDEX sessions_moderator_id ON sessions (moderator_id);

-- One row per login attempt that has not succeeded (yet): written before the password is
-- checked, deleted when it turns out right. `account` is a hash of the lowercased username
-- (a mistyped password in the username field is not kept); `address` the client IP, or its
-- /64 for IPv6.
CREATE TABLE login_failures (
    id         bigserial PRIMARY KEY,
    account    bytea NOT NULL,
    address    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_address ON login_failures (address, created_at);
CREATE INDEX login_failures_account ON login_failures (address, account, created_at);
